"""Times matrix products of one framework (loom or torch) in this process, for bench/blas/run.sh's library table:
loom's products through its GEMM engine (LOOM_GEMM picks it) against PyTorch's, each framework in its own process
(both load an OpenMP runtime; in one process they would share it).

    python bench/blas/frameworks.py loom|torch [--threads 1,2] [--dtypes float32,bfloat16] [--rounds 5]

Prints one line per (threads, dtype, shape): median and best GFLOP/s over the rounds, each round repeating the
product for at least 20 ms. Shapes: squares 512-2048 and the GPT shapes of bench/cases.py (B*T = 2048 rows)."""
import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SHAPES = [  # (label, m, n, k, A stored transposed, B stored transposed)
    ("512", 512, 512, 512, 0, 0), ("1024", 1024, 1024, 1024, 0, 0), ("2048", 2048, 2048, 2048, 0, 0),
    ("GPT qkv", 2048, 1152, 384, 0, 0), ("GPT qkv dX", 2048, 384, 1152, 0, 1), ("GPT qkv dW", 384, 1152, 2048, 1, 0),
    ("GPT up", 2048, 1536, 384, 0, 0), ("GPT up dX", 2048, 384, 1536, 0, 1), ("GPT up dW", 384, 1536, 2048, 1, 0),
    ("GPT down", 2048, 384, 1536, 0, 0), ("GPT down dX", 2048, 1536, 384, 0, 1),
    ("GPT down dW", 1536, 384, 2048, 1, 0),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=["loom", "torch"])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--filter", default="")
    args = p.parse_args()
    if args.framework == "loom":
        import loom as fw
        engine = fw._C._gemm_info()
    else:
        import torch as fw
        engine = {"mkldnn_bf16": True}
    print(f"# {args.framework} {engine}")
    for threads in map(int, args.threads.split(",")):
        fw.set_num_threads(threads)
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(fw, dtype_name)
            for label, m, n, k, ta, tb in SHAPES:
                if args.filter not in label:
                    continue
                a = fw.randn(k, m).to(dtype).t() if ta else fw.randn(m, k).to(dtype)
                b = fw.randn(n, k).to(dtype).t() if tb else fw.randn(k, n).to(dtype)
                fw.matmul(a, b)
                samples = []
                for _ in range(args.rounds):
                    reps, t0 = 0, time.perf_counter()
                    while True:
                        fw.matmul(a, b)
                        reps += 1
                        elapsed = time.perf_counter() - t0
                        if elapsed >= 0.02:
                            break
                    samples.append(2.0 * m * n * k / (elapsed / reps) * 1e-9)
                print(f"{threads}\t{dtype_name}\t{label}\t{statistics.median(samples):.1f}/{max(samples):.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
