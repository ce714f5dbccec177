# Sourced by bench/ab.sh and bench/callgrind.sh: the small app and the Berth meshes they put in front of it.

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# require_tools TOOL...: each is on PATH, or the script stops, saying what to install.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
    done
}

# stop_started: stops every process in the caller's `pids` and waits for them.
stop_started() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    pids=()
}

# start_small_app DIR: starts the app that write_small_app wrote into DIR, in this shell, its pid added to `pids`.
start_small_app() {
    nginx -p "$1/app" -c "$1/app.conf" &
    pids+=($!)
}

# require_binaries DIR...: each DIR holds executable berth-edge, berth-router and berth-sidecar, or the script stops.
require_binaries() {
    local dir exe
    for dir in "$@"; do
        for exe in berth-edge berth-router berth-sidecar; do
            [ -x "$dir/$exe" ] || { echo "error: $dir/$exe is missing or not executable" >&2; exit 1; }
        done
    done
}

# write_small_app DIR PORT: DIR/app.conf, nginx with one worker answering every path with the bench's 62-byte JSON
# (the app of bench/run.sh), started with `nginx -p DIR/app -c DIR/app.conf`.
write_small_app() {
    local dir=$1 port=$2
    mkdir -p "$dir/app"
    cat >"$dir/app.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $dir/app/error.log warn;
pid $dir/app/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location / { default_type application/json; return 200 '{"ok":true,"app":"nginx","message":"hello from the bench app"}'; }
    }
}
CONF
}

# write_proxy_conf DIR NAME LISTEN UPSTREAM: DIR/NAME.conf, nginx with one worker as a keep-alive reverse proxy from
# LISTEN (HOST:PORT) to UPSTREAM (HOST:PORT), as bench/run.sh configures its hops; start it with
# `nginx -p DIR/NAME -c DIR/NAME.conf`.
write_proxy_conf() {
    local dir=$1 name=$2 listen=$3 upstream=$4
    mkdir -p "$dir/$name"
    cat >"$dir/$name.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
error_log $dir/$name/error.log warn;
pid $dir/$name/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/$name/body;
    proxy_temp_path $dir/$name/proxy;
    fastcgi_temp_path $dir/$name/fastcgi;
    uwsgi_temp_path $dir/$name/uwsgi;
    scgi_temp_path $dir/$name/scgi;
    keepalive_requests 1000000;
    tcp_nodelay on;
    upstream next { server $upstream; keepalive 64; keepalive_requests 1000000; }
    server {
        listen $listen backlog=4096;
        location / { proxy_pass http://next; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
CONF
}

# start_mesh NAME DIR APP_PORT LOG_DIR [EDGE ARGS...]: berth-router, berth-sidecar (class Bench, capacity 128) and
# berth-edge (route / to Bench) from DIR, in front of the app on APP_PORT, started in this shell so that the
# caller's `pids` holds them. Sets port_NAME (the edge's port) and procs_NAME ("router:PID sidecar:PID edge:PID").
# When `mesh_wrap_role` names one of the three, it runs under the command in the array `mesh_wrap` (valgrind...).
start_mesh() {
    local name=$1 dir=$2 app_port=$3 logs=$4 frontend backend events_in events_out edge procs=""
    shift 4
    frontend=$(free_port) backend=$(free_port) events_in=$(free_port) events_out=$(free_port) edge=$(free_port)
    launch() { # ROLE ARGS...
        local role=$1 wrap=()
        shift
        [ "$role" != "${mesh_wrap_role:-}" ] || wrap=("${mesh_wrap[@]}")
        "${wrap[@]}" "$dir/berth-$role" "$@" >"$logs/$name-$role.log" 2>&1 &
        pids+=($!)
        procs+="${procs:+ }$role:$!"
    }
    launch router --frontend "tcp://127.0.0.1:$frontend" --backend "tcp://127.0.0.1:$backend" \
        --events-in "tcp://127.0.0.1:$events_in" --events-out "tcp://127.0.0.1:$events_out"
    launch sidecar --router "tcp://127.0.0.1:$backend" --events "tcp://127.0.0.1:$events_in" \
        --class Bench --instance "$name" --port "$app_port" --capacity 128
    launch edge --listen "127.0.0.1:$edge" --router "tcp://127.0.0.1:$frontend" --events "tcp://127.0.0.1:$events_in" \
        --route /=Bench "$@"
    printf -v "port_$name" '%s' "$edge"
    printf -v "procs_$name" '%s' "$procs"
}

# wait_for_mesh PORT SECONDS: waits until the edge on PORT answers /; fails, saying so, after SECONDS.
wait_for_mesh() {
    local port=$1 deadline=$((SECONDS + $2))
    until curl -sf "http://127.0.0.1:$port/" >/dev/null; do
        ((SECONDS < deadline)) || { echo "error: the mesh on :$port did not answer within $2 s" >&2; return 1; }
        sleep 0.1
    done
}
