"""Ray integration: batch generation over Ray Data and the OpenAI server as a Ray Serve application.

Needs the extra: pip install "fastformer[ray]". Every actor or replica loads its own copy of the model from
`model` (a GGUF file or Hugging Face model directory on that node, or None for the embedded default model) and
runs `threads` kernel threads (default: the CPUs Ray gave it, so set num_cpus per actor = threads).

>>> ds = ray.data.from_items([{"prompt": "In the beginning"}])  # doctest: +SKIP
>>> ds.map_batches(Generator, fn_constructor_kwargs={"model": "kjv.gguf", "max_new_tokens": 16},
...                compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1, batch_size=16).take_all()  # doctest: +SKIP
>>> serve.run(serve_app("kjv.gguf", parallel=8))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

import numpy as np

import fastformer
from fastformer.errors import UnsupportedError
from fastformer.model import Model


def _load(model, threads):
    """Set the actor's kernel threads, then load `model` (a path, or None for the default model)."""
    if threads is None:
        threads = _ray_cpus()
    if threads is not None:
        fastformer.set_num_threads(threads)
    if model is None:
        return Model.default()
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a path to a GGUF file or model directory, or None, got {type(model).__name__}")
    return Model.load(model)


def _ray_cpus():
    """The whole CPUs Ray assigned to this actor (at least 1), or None outside a Ray worker."""
    try:
        import ray
    except ImportError:  # Generator called directly, without Ray
        return None
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return max(1, int(cpus)) if cpus else None


def _column(batch, name, argument):
    """The values of column `name` of a batch (dict of numpy arrays or pandas DataFrame) as a list."""
    if name not in batch:
        have = list(batch.columns if hasattr(batch, "columns") else batch)
        raise KeyError(f"{argument}={name!r} is not a column of the batch; its columns are {have}")
    return list(batch[name])


def _with_column(batch, name, values):
    """A copy of `batch` (same type) with column `name` set to `values`; the other columns are kept."""
    if hasattr(batch, "assign"):  # pandas.DataFrame
        return batch.assign(**{name: list(values) if isinstance(values, np.ndarray) else values})
    out = dict(batch)
    out[name] = values
    return out


class Generator:
    """Generate text for a column of prompts: a callable class for Ray Data's `map_batches`.

    The model loads once per actor; each batch runs through the batched engine (`Model.generate_batch`, so
    greedy rows equal `Model.generate`'s); `sampling` takes its keywords (max_new_tokens, temperature, top_k,
    top_p, min_p, repetition_penalty, seed, stop, stop_ids, ignore_eos, parallel). Prompts are str or token ids.

    >>> ds.map_batches(Generator, fn_constructor_kwargs={"model": "kjv.gguf"}, num_cpus=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        prompt_column: str = "prompt",
        output_column: str = "generated_text",
        threads: int | None = None,
        **sampling: Any,
    ):
        self.model = _load(model, threads)
        self.prompt_column, self.output_column = prompt_column, output_column
        self.sampling = sampling
        self.model.generate_batch([], **sampling)  # checks the options now rather than at the first batch

    def __call__(self, batch):
        prompts = _column(batch, self.prompt_column, "prompt_column")
        prompts = [p if isinstance(p, str) else [int(t) for t in p] for p in prompts]  # token ids: numpy -> int
        texts = self.model.generate_batch(prompts, **self.sampling)
        return _with_column(batch, self.output_column, np.array(texts, dtype=object))


class Embedder:
    """Embed a column of texts with an encoder model: a callable class for Ray Data's `map_batches`.

    The model loads once per actor; each batch is one `model.embed(texts)` call, whose rows become the
    `output_column` (one float32 vector per row).

    >>> ds.map_batches(Embedder, fn_constructor_kwargs={"model": "bge-small"}, num_cpus=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        text_column: str = "text",
        output_column: str = "embedding",
        threads: int | None = None,
    ):
        self.model = _load(model, threads)
        if not self.model.is_encoder:
            raise UnsupportedError(f"{self.model.path}: not an encoder model (Embedder needs one, e.g. a BERT)")
        self.text_column, self.output_column = text_column, output_column

    def __call__(self, batch):
        texts = [str(t) for t in _column(batch, self.text_column, "text_column")]
        vectors = np.asarray(self.model.embed(texts), dtype=np.float32)
        return _with_column(batch, self.output_column, vectors)


def serve_app(model: str | os.PathLike | None = None, *, deployment_options: dict | None = None, **engine_options):
    """A Ray Serve application answering the routes of `fastformer serve` (fastformer.server), one model per replica.

    `engine_options` are `fastformer.server.create_app`'s (api_key, parallel, max_queue, threads, model_name);
    `deployment_options` go to the deployment's `.options()` (num_replicas, autoscaling_config,
    ray_actor_options, ...). A replica takes up to `parallel` requests at once (max_ongoing_requests), so Serve
    queues the rest and routes them to the least busy replica. In config files use `build_app`.

    >>> serve.run(serve_app("kjv.gguf", deployment_options={"num_replicas": 2}))  # doctest: +SKIP
    """
    from fastformer.server import create_app

    known = set(inspect.signature(create_app).parameters) - {"model_or_path"}
    unknown = sorted(set(engine_options) - known)
    if unknown:
        raise TypeError(f"serve_app got unexpected engine options {unknown}; it takes {sorted(known)}")
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a path to a GGUF file or model directory, or None, got {type(model).__name__}")
    parallel = engine_options.get("parallel", inspect.signature(create_app).parameters["parallel"].default)
    options = {"max_ongoing_requests": parallel, **(deployment_options or {})}
    model = None if model is None else os.fspath(model)
    return _deployment().options(**options).bind(model, **engine_options)


def build_app(args: dict):
    """`serve_app` as a Serve application builder (one dict argument), for `serve run` and config files:
    `serve run fastformer.ray:build_app model=/models/kjv.gguf parallel=8`, or in a config file
    `import_path: fastformer.ray:build_app` with `args: {model: /models/kjv.gguf, parallel: 8}`.
    """
    args = dict(args)
    for name in ("parallel", "max_queue", "threads"):  # `serve run` passes key=value arguments as strings
        if isinstance(args.get(name), str) and args[name].isdigit():
            args[name] = int(args[name])
    return serve_app(args.pop("model", None), **args)


@functools.cache
def _deployment():
    """The Serve deployment class (defined on first use, so importing fastformer.ray needs no Ray Serve)."""
    try:
        from ray import serve
    except ImportError as e:
        raise ImportError(f'serve_app needs the ray extra: pip install "fastformer[ray]" ({e})') from None

    @serve.deployment(name="fastformer")
    @serve.ingress()
    class FastformerServer:
        def __init__(self, model, threads=None, **engine_options):
            self.model = _load(model, threads)  # before the replica takes traffic; a bad path fails it
            self.engine_options = engine_options

        def __serve_build_asgi_app__(self):
            from fastformer.server import create_app

            return create_app(self.model, **self.engine_options)

    return FastformerServer
