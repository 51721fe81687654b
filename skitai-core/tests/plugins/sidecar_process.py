"""The process the sidecar test plugin has the master run: records `start <pid>` and, on
SIGTERM, `stop <pid>` in DIR/events, then waits for signals (or exits at once when asked)."""
import os
import signal
import sys
import time


def record(folder, event):
    with open(os.path.join(folder, "events"), "a") as file:
        file.write(f"{event} {os.getpid()}\n")


def main():
    folder = sys.argv[1]
    record(folder, "start")
    print(f"sidecar {os.getpid()} running", flush=True)
    if "--exit-at-once" in sys.argv:
        sys.exit(7)

    def stop(signum, frame):
        record(folder, "stop")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
