import os

with open("/tmp/import-pids", "a") as record:
    record.write(f"{__name__}:{os.getpid()} ")
