// sgemm across BLAS libraries, side by side in one process: each library is dlopen'ed (RTLD_LOCAL, so two
// builds of the same library do not see each other's symbols) and called on the same inputs, the libraries
// alternating within every round (order rotated each round). Prints GFLOP/s per shape, thread count and
// library as median/best over the rounds (on a shared machine the best round shows what a library can do,
// the median what it did). Not part of loom's build: bench/blas/run.sh builds and runs it.
//
// usage: sgemm_bench [--rounds R] [--min-ms T] [--threads 1,2] [--filter substr] name=path[,kind[,VAR=value]] ...
//   kind: dnnl (dnnl_sgemm) or anything else (cblas_sgemm); VAR=value is set while the library loads (OpenBLAS
//   reads OPENBLAS_CORETYPE then; give each such copy its own path, dlopen returns a loaded path's handle).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                               float*, int);
typedef int (*dnnl_sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                             int64_t, float, float*, int64_t);
typedef void (*set_threads_fn)(int);
typedef int (*mkl_set_threads_fn)(int);

typedef struct {
  const char* name;
  const char* path;
  void* handle;
  cblas_sgemm_fn sgemm;
  dnnl_sgemm_fn dnnl;
  set_threads_fn set_threads;  // openblas_set_num_threads / bli_thread_set_num_threads / MKL_Set_Num_Threads
} Lib;

typedef struct {
  const char* label;
  int m, n, k;
  int ta, tb;  // A is m x k (stored k x m when ta), B is k x n (stored n x k when tb)
} Shape;

static const Shape kShapes[] = {
    {"256", 256, 256, 256, 0, 0},
    {"512", 512, 512, 512, 0, 0},
    {"1024", 1024, 1024, 1024, 0, 0},
    {"2048", 2048, 2048, 2048, 0, 0},
    {"GPT qkv 2048x384 @ 384x1152", 2048, 1152, 384, 0, 0},
    {"GPT qkv dX: 2048x1152 @ (384x1152)^T", 2048, 384, 1152, 0, 1},
    {"GPT qkv dW: (2048x384)^T @ 2048x1152", 384, 1152, 2048, 1, 0},
    {"GPT up 2048x384 @ 384x1536", 2048, 1536, 384, 0, 0},
    {"GPT up dX: 2048x1536 @ (384x1536)^T", 2048, 384, 1536, 0, 1},
    {"GPT up dW: (2048x384)^T @ 2048x1536", 384, 1536, 2048, 1, 0},
    {"GPT down 2048x1536 @ 1536x384", 2048, 384, 1536, 0, 0},
    {"GPT down dX: 2048x384 @ (1536x384)^T", 2048, 1536, 384, 0, 1},
    {"GPT down dW: (2048x1536)^T @ 2048x384", 1536, 384, 2048, 1, 0},
    {"MLP 256x784 @ 784x1024", 256, 1024, 784, 0, 0},
    {"MLP 256x1024 @ 1024x1024", 256, 1024, 1024, 0, 0},
    {"MLP dW: (256x784)^T @ 256x1024", 784, 1024, 256, 1, 0},
    {"MLP dX: 256x1024 @ (1024x1024)^T", 256, 1024, 1024, 0, 1},
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double loadavg(void) {
  double l = -1;
  FILE* f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

static void call(const Lib* lib, const Shape* s, const float* a, const float* b, float* c) {
  int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
  if (lib->dnnl)
    lib->dnnl(s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
  else
    lib->sgemm(RowMajor, s->ta ? Trans : NoTrans, s->tb ? Trans : NoTrans, s->m, s->n, s->k, 1.0f, a, lda, b, ldb,
               0.0f, c, s->n);
}

static void set_threads(const Lib* lib, int t) {
  omp_set_num_threads(t);  // oneDNN (OpenMP runtime) and OpenMP-built libraries follow the process's count
  if (lib->set_threads) lib->set_threads(t);
}

static int cmp(const void* x, const void* y) {
  double a = *(const double*)x, b = *(const double*)y;
  return a < b ? -1 : a > b;
}

// One sample: repeat the call until min_s has passed; returns seconds per call.
static double sample(const Lib* lib, const Shape* s, const float* a, const float* b, float* c, double min_s) {
  int reps = 0;
  double t0 = now(), t;
  do {
    call(lib, s, a, b, c);
    ++reps;
    t = now() - t0;
  } while (t < min_s);
  return t / reps;
}

int main(int argc, char** argv) {
  int rounds = 7;
  double min_s = 0.02;
  int threads[8] = {1, 2}, nthreads = 2;
  const char* filter = NULL;
  Lib libs[16];
  int nlibs = 0;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc) min_s = atof(argv[++i]) / 1000;
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      nthreads = 0;
      for (char* tok = strtok(argv[++i], ","); tok && nthreads < 8; tok = strtok(NULL, ",")) threads[nthreads++] = atoi(tok);
    } else {
      char* spec = strdup(argv[i]);
      char* eq = strchr(spec, '=');
      if (!eq) { fprintf(stderr, "bad library spec %s (want name=path[,kind])\n", argv[i]); return 2; }
      *eq = 0;
      char* kind = strchr(eq + 1, ',');
      if (kind) *kind++ = 0;
      char* env = kind ? strchr(kind, ',') : NULL;
      if (env) *env++ = 0;
      char* env_value = env ? strchr(env, '=') : NULL;
      if (env_value) *env_value++ = 0;
      char* env_before = env && getenv(env) ? strdup(getenv(env)) : NULL;
      if (env_value) setenv(env, env_value, 1);
      Lib* L = &libs[nlibs];
      memset(L, 0, sizeof *L);
      L->name = spec;
      L->path = eq + 1;
      L->handle = dlopen(L->path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (env_value) {
        if (env_before) setenv(env, env_before, 1);
        else unsetenv(env);
      }
      if (!L->handle) { fprintf(stderr, "%s: %s\n", L->name, dlerror()); return 2; }
      if (kind && !strcmp(kind, "dnnl")) {
        L->dnnl = (dnnl_sgemm_fn)dlsym(L->handle, "dnnl_sgemm");
      } else {
        L->sgemm = (cblas_sgemm_fn)dlsym(L->handle, "cblas_sgemm");
      }
      if (!L->sgemm && !L->dnnl) { fprintf(stderr, "%s: no sgemm symbol\n", L->name); return 2; }
      const char* setters[] = {"openblas_set_num_threads", "bli_thread_set_num_threads", "MKL_Set_Num_Threads"};
      for (int k = 0; k < 3 && !L->set_threads; ++k) L->set_threads = (set_threads_fn)dlsym(L->handle, setters[k]);
      ++nlibs;
    }
  }
  if (nlibs == 0) { fprintf(stderr, "no libraries given\n"); return 2; }
  printf("# rounds %d, min sample %.0f ms, load average at start %.2f\n", rounds, min_s * 1000, loadavg());
  printf("threads\tshape\tm\tn\tk");
  for (int l = 0; l < nlibs; ++l) printf("\t%s", libs[l].name);
  printf("\tload\tmax_rel_diff\n");
  fflush(stdout);
  for (int ti = 0; ti < nthreads; ++ti) {
    int nt = threads[ti];
    for (size_t si = 0; si < sizeof kShapes / sizeof kShapes[0]; ++si) {
      const Shape* s = &kShapes[si];
      if (filter && !strstr(s->label, filter)) continue;
      size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
      float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *ref = malloc(nc * 4);
      srand(1234 + (unsigned)si);
      for (size_t i = 0; i < na; ++i) a[i] = (float)rand() / RAND_MAX * 2 - 1;
      for (size_t i = 0; i < nb; ++i) b[i] = (float)rand() / RAND_MAX * 2 - 1;
      double* times = calloc((size_t)nlibs * rounds, sizeof(double));
      double maxdiff = 0;
      // Warm-up (and a check that the libraries agree).
      for (int l = 0; l < nlibs; ++l) {
        set_threads(&libs[l], nt);
        call(&libs[l], s, a, b, c);
        call(&libs[l], s, a, b, c);
        if (l == 0) memcpy(ref, c, nc * 4);
        else
          for (size_t i = 0; i < nc; ++i) {
            double d = fabs(c[i] - ref[i]) / (fabs(ref[i]) + 1);
            if (d > maxdiff) maxdiff = d;
          }
      }
      double load0 = loadavg();
      for (int r = 0; r < rounds; ++r)
        for (int j = 0; j < nlibs; ++j) {
          int l = (j + r) % nlibs;  // rotate the order every round
          set_threads(&libs[l], nt);
          times[l * rounds + r] = sample(&libs[l], s, a, b, c, min_s);
        }
      double flop = 2.0 * s->m * s->n * s->k;
      printf("%d\t%s\t%d\t%d\t%d", nt, s->label, s->m, s->n, s->k);
      for (int l = 0; l < nlibs; ++l) {
        qsort(times + l * rounds, rounds, sizeof(double), cmp);
        double med = rounds % 2 ? times[l * rounds + rounds / 2]
                                : 0.5 * (times[l * rounds + rounds / 2 - 1] + times[l * rounds + rounds / 2]);
        double best = times[l * rounds];  // sorted: the fastest sample
        printf("\t%.1f/%.1f", flop / med * 1e-9, flop / best * 1e-9);
      }
      printf("\t%.2f\t%.1e\n", 0.5 * (load0 + loadavg()), maxdiff);
      fflush(stdout);
      free(a); free(b); free(c); free(ref); free(times);
    }
  }
  printf("# load average at end %.2f\n", loadavg());
  return 0;
}
