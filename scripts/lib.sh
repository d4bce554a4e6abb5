# Shell helpers shared by scripts/*.sh (sourced, not run). Callers set $PY
# to a python3 before calling free_port.

# Prints a free TCP port on 127.0.0.1.
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (bounded, 30 s) until 127.0.0.1:$1 accepts connections; $2 is the pid
# that must stay alive meanwhile. Returns 1 if it dies or time runs out.
wait_port() {
    local port="$1" pid="$2" i
    for i in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.25
    done
    return 1
}
