"""python -m model_server: uvicorn on $HOST:$PORT (defaults 127.0.0.1:8080), one worker."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "model_server.app:app",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        workers=1,
        access_log=os.environ.get("MODEL_SERVER_ACCESS_LOG", "") == "1",
    )


if __name__ == "__main__":
    main()
