# Sourced by bench/ab.sh and bench/callgrind.sh: a free port, and the small app both put in front of Berth.

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

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
