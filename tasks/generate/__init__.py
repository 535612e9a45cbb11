"""Teacher generation: one backend interface (hf, openai, vllm), request keys, sampling, accounting.

The modules that run on a GPU worker (`sampling`, `offsets`, `hf_backend`) import only torch and
transformers, so `bench/gpu_check.py` can use them on a machine without polars or Prefect.
"""
