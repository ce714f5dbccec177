#!/usr/bin/env python3
"""A stranger on the bus, written from Proto/berth.proto alone (pyzmq and classes protoc generated from it).

  python_peer.py GENERATED edge ROUTER_FRONTEND CLASS PATH [BODY]
      As an edge: asks the router for its directory, picks an instance of CLASS, sends it `POST PATH` (GET without
      BODY) over a DEALER of its own, and prints the answer as JSON: status, body, served_by, error.
  python_peer.py GENERATED sidecar ROUTER_BACKEND CLASS INSTANCE
      As a sidecar: binds a ROUTER, announces it with READY, heartbeats, and answers every Request itself with 200 and
      a JSON body naming itself and what it was asked; prints "ready" once the router answered a heartbeat, and
      leaves with DISCONNECT on SIGTERM.
  python_peer.py GENERATED old-sidecar ROUTER_BACKEND CLASS INSTANCE
      A sidecar of another protocol version: sends READY with version 1 and prints the router's answer.
"""
import json, signal, sys, time

sys.path.insert(0, sys.argv[1])
import berth_pb2 as pb  # noqa: E402
import zmq  # noqa: E402

PROTOCOL_VERSION = 2


def envelope(**kind):
    return pb.Envelope(**kind).SerializeToString()


def receive(socket, timeout_ms=10_000):
    if not socket.poll(timeout_ms):
        raise TimeoutError("no answer within %d ms" % timeout_ms)
    frames = socket.recv_multipart()
    message = pb.Envelope()
    message.ParseFromString(frames[0])
    return message, frames[1:]


def edge(frontend, class_name, path, body):
    context = zmq.Context()
    directory_socket = context.socket(zmq.DEALER)
    directory_socket.connect(frontend)
    directory_socket.send(envelope(directory_request=pb.DirectoryRequest()))
    instances = []
    deadline = time.time() + 10
    while not instances and time.time() < deadline:
        message, _ = receive(directory_socket)
        if message.WhichOneof("kind") == "directory":
            instances = [i for i in message.directory.instances if i.class_name == class_name]
    if not instances:
        raise SystemExit("no instance of %s in the directory" % class_name)
    instance = instances[0]
    sidecar = context.socket(zmq.DEALER)
    sidecar.connect(instance.endpoint)
    request = pb.Request(id=7, target=pb.Target(class_name=class_name), method="POST" if body else "GET", path=path,
                         timeout_ms=5000, headers=[pb.Header(name="x-from", value=b"python")])
    frames = [envelope(request=request)] + ([body.encode()] if body else [])
    sidecar.send_multipart(frames)
    while True:
        message, rest = receive(sidecar)
        if message.WhichOneof("kind") == "response" and message.response.id == 7:
            break
    response = message.response
    print(json.dumps({
        "status": response.status,
        "body": b"".join(rest).decode("utf-8", "replace"),
        "served_by": response.served_by.instance_id,
        "error": response.error.message if response.HasField("error") else None,
        "headers": {h.name: h.value.decode() for h in response.headers},
    }), flush=True)
    # A request the sidecar cannot serve is answered, not dropped.
    sidecar.send_multipart([envelope(request=pb.Request(id=8, method="GET", path="/", timeout_ms=5000))])
    while True:
        message, _ = receive(sidecar)
        # No id when the request could not be read at all.
        if message.WhichOneof("kind") == "response" and message.response.id in (8, 0):
            break
    print(json.dumps({"refused": message.response.error.message if message.response.HasField("error") else None}), flush=True)


def sidecar(backend, class_name, instance_id):
    context = zmq.Context()
    requests = context.socket(zmq.ROUTER)
    port = requests.bind_to_random_port("tcp://127.0.0.1")
    router = context.socket(zmq.DEALER)
    router.connect(backend)
    ready = pb.Ready(protocol_version=PROTOCOL_VERSION, class_name=class_name, instance_id=instance_id, ports=[port],
                     capacity=16, heartbeat_ms=300, endpoint="tcp://127.0.0.1:%d" % port)
    router.send(envelope(ready=ready))
    leaving = []
    signal.signal(signal.SIGTERM, lambda *_: leaving.append(True))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])  # a parent may have started us with it blocked
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    poller.register(requests, zmq.POLLIN)
    next_beat = time.time()
    said_ready = False
    while not leaving:
        if time.time() >= next_beat:
            router.send(envelope(heartbeat=pb.Heartbeat()))
            next_beat = time.time() + 0.3
        for socket, _ in poller.poll(100):
            if socket is router:
                message, _ = receive(router, 0)
                kind = message.WhichOneof("kind")
                if kind == "heartbeat" and not said_ready:
                    said_ready = True
                    print("ready", flush=True)
                elif kind == "disconnect":
                    router.send(envelope(ready=ready))
            else:
                frames = requests.recv_multipart()
                peer, message = frames[0], pb.Envelope()
                message.ParseFromString(frames[1])
                kind = message.WhichOneof("kind")
                if kind == "heartbeat":
                    requests.send_multipart([peer, envelope(heartbeat=pb.Heartbeat())])
                elif kind == "request":
                    asked = message.request
                    answer = json.dumps({"instance": instance_id, "method": asked.method, "path": asked.path,
                                         "body": b"".join(frames[2:]).decode()}).encode()
                    response = pb.Response(id=asked.id, status=200,
                                           headers=[pb.Header(name="content-type", value=b"application/json")],
                                           served_by=pb.Endpoint(class_name=class_name, instance_id=instance_id, port=port))
                    requests.send_multipart([peer, envelope(response=response), answer])
    router.send(envelope(disconnect=pb.Disconnect(reason="python sidecar leaving")))
    time.sleep(0.2)


def old_sidecar(backend, class_name, instance_id):
    router = zmq.Context().socket(zmq.DEALER)
    router.connect(backend)
    router.send(envelope(ready=pb.Ready(protocol_version=1, class_name=class_name, instance_id=instance_id, ports=[1],
                                        capacity=1, heartbeat_ms=300, endpoint="tcp://127.0.0.1:1")))
    message, _ = receive(router)
    print(json.dumps({"answer": message.WhichOneof("kind"), "reason": message.disconnect.reason}), flush=True)


if __name__ == "__main__":
    role = sys.argv[2]
    if role == "old-sidecar":
        old_sidecar(sys.argv[3], sys.argv[4], sys.argv[5])
    elif role == "edge":
        edge(sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else "")
    else:
        sidecar(sys.argv[3], sys.argv[4], sys.argv[5])
