#!/usr/bin/env python3
"""Holds a listening TCP socket the way systemd does for a .socket unit, and
starts processes on it: each child gets the socket as fd 3 with LISTEN_FDS=1
and LISTEN_PID set to the child's own pid (sd_listen_fds(3)).

Unlike systemd-socket-activate, which execs its command once, this keeps the
socket for its whole life, so a test can stop scratchd and start the next one
on the same socket, as systemd does on Restart= or `systemctl restart`:
connections that arrive while no process accepts wait in the kernel backlog.

Why Python and not Node: a Node process that listens also accepts (libuv
polls every listening socket it opens); this one never accepts.

    socket-holder.py HOST PORT BACKLOG -- COMMAND [ARGS...]

stdout (one line per event): "listening PORT", "started PID", "exited PID CODE"
(CODE is the exit status, or -N for death by signal N).
stdin (one line per command): "start STDERR_FILE" starts COMMAND with stdout
and stderr appended to STDERR_FILE. At EOF, children get SIGTERM and the
holder exits once they are gone.
"""
import fcntl
import os
import select
import signal
import socket
import sys


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main():
    sep = sys.argv.index("--")
    host, port, backlog = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    command = sys.argv[sep + 1:]

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    # Keep our copy far from 0-3, so setting up a child's fds cannot clobber it.
    listen_fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    say("listening %d" % sock.getsockname()[1])

    children = set()
    pending = b""
    stdin_open = True
    while stdin_open or children:
        if stdin_open:
            readable, _, _ = select.select([0], [], [], 0.01)
            if readable:
                data = os.read(0, 4096)
                if not data:
                    stdin_open = False
                    for pid in children:
                        _kill(pid, signal.SIGTERM)
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    verb, _, arg = line.decode().partition(" ")
                    if verb == "start":
                        pid = _start(command, listen_fd, arg)
                        children.add(pid)
                        say("started %d" % pid)
        else:
            select.select([], [], [], 0.01)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                children.discard(pid)
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
                say("exited %d %d" % (pid, code))


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _start(command, listen_fd, stderr_file):
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        out = os.open(stderr_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(listen_fd, 3)  # inheritable, unlike every other fd Python opened
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
        env.pop("LISTEN_FDNAMES", None)
        os.execvpe(command[0], command, env)
    except BaseException as err:  # noqa: BLE001 - report anything, never return into the parent's loop
        os.write(2, ("socket-holder: cannot start %s: %s\n" % (command[0], err)).encode())
    os._exit(127)


if __name__ == "__main__":
    main()
