"""Runs a command on a pseudo-terminal for the sessionctl tests, and
answers the test's requests on stdin, one per line:

  attrs          -> "raw" or "cooked": the terminal's mode now
  resize C R     -> sets the size to C columns and R rows, sends SIGWINCH
                    to the command, answers "resized"
  wait           -> waits for the command, answers "exit CODE", then
                    "restored" or "not-restored": whether the terminal's
                    attributes are back to what they were before it ran

The terminal starts at 100 columns and 30 rows. What the command writes
is read and thrown away, so it never blocks on a full terminal.
Usage: pty_driver.py COMMAND [ARG...]
"""

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def drain(fd):
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:
            return


def main():
    master, slave = os.openpty()
    set_size(master, 100, 30)
    before = termios.tcgetattr(slave)
    child = subprocess.Popen(
        sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    threading.Thread(target=drain, args=(master,), daemon=True).start()
    print("spawned", child.pid, flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "attrs":
            lflag = termios.tcgetattr(slave)[3]
            raw = not (lflag & termios.ICANON) and not (lflag & termios.ECHO)
            print("raw" if raw else "cooked", flush=True)
        elif words[0] == "resize":
            set_size(master, int(words[1]), int(words[2]))
            os.kill(child.pid, signal.SIGWINCH)
            print("resized", flush=True)
        elif words[0] == "wait":
            code = child.wait(timeout=30)
            print("exit", code, flush=True)
            after = termios.tcgetattr(slave)
            print("restored" if after == before else "not-restored", flush=True)
            return


if __name__ == "__main__":
    main()
