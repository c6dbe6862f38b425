"""llama.cpp's own HTTP server (through xllamacpp's prebuilt wheel: no compiler) as a child process.

`python -m streams.local.llama_server --model PATH --alias NAME --port P --slots N --threads T` serves an
OpenAI-compatible API on 127.0.0.1:P with continuous batching over N parallel slots, prompt caching on (the
system prompt and the worked example are shared by every request), `json_schema` structured output, and the
model reported under its real name. It runs until SIGTERM or SIGINT. It is a process of its own so that a
crash of the engine, or Ctrl-C in `demo`, is handled like any child's.
"""

import argparse
import signal
import threading


def serve(model: str, alias: str, port: int, slots: int, threads: int, ctx_per_slot: int,
          draft: str | None = None, draft_max: int = 8) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.model_alias = {alias}  # without it responses say "model": "-"
    params.n_parallel = slots  # llama.cpp's default is 1: one request at a time
    params.cont_batching = True
    params.cache_prompt = True
    params.n_ctx = ctx_per_slot * slots  # shared by the slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if draft:  # speculative decoding: a small model of the same tokenizer proposes, the model verifies
        params.speculative.draft.mparams.path = draft
        params.speculative.draft.n_max = draft_max
        params.speculative.draft.cpuparams.n_threads = threads
        params.speculative.draft.cpuparams_batch.n_threads = threads
    params.port = port
    params.hostnames = ["127.0.0.1"]
    server = xllamacpp.Server(params)  # listens until collected: this reference lives as long as the process
    print(f"listening on {server.listening_address}: xllamacpp {xllamacpp.__version__}, {slots} slots, "
          f"{threads} threads", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    del server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--draft", help="GGUF of a draft model for speculative decoding")
    parser.add_argument("--draft-max", type=int, default=8)
    args = parser.parse_args(argv)
    serve(args.model, args.alias, args.port, args.slots, args.threads, args.ctx_per_slot, args.draft, args.draft_max)


if __name__ == "__main__":
    main()
