// Trains the C++ GPT (loom::models::GPT, the twin of Python's loom.models.GPT) on characters, from C++ alone:
// loom::data::CharTokenizer turns the text into ids, random windows of block_size + 1 characters make the batches,
// loom::optim::AdamW updates the model. Prints the training loss every --log-every steps, the validation loss
// (the last 10% of the text) at the start and the end, and a sample of generated text.
//
//   make cpp-build && build/cmake/train_gpt              # 600 steps of a 2-layer, 64-wide model on the fortunes
//   build/cmake/train_gpt --steps 2000 --n-embd 128 --data my.txt
//   build/cmake/train_gpt --help
//
// The default text is Debian's package `fortunes` (/usr/share/games/fortunes: its plain text files in name order,
// '%' separator lines removed, files separated by a blank line: exactly loom.datasets.text_corpus()); --data FILE
// names any UTF-8 file. The default run: ~30 s on 2 cores, validation loss 4.74 -> 2.18.
//
// --check-logits FILE (used by tests/python/test_cpp_gpt.py): FILE is a safetensors file holding a GPT state
// dict, "check.idx" (B, T) and "check.logits" (B, T, vocab) computed by Python, and the config in its metadata
// (vocab_size, block_size, n_layer, n_head, n_embd, bias). The weights are loaded into the C++ GPT by name
// (strict), the logits recomputed in eval mode; prints the max abs difference and exits 0 only if it is <= --tol.
// With "init_seed" in the metadata the file's weights must also be Python's initial ones for loom.manual_seed(
// init_seed): the C++ GPT built after loom::manual_seed(init_seed) must equal them exactly (same draws, same order).
// With "check.generated" (and generate_tokens, generate_temperature, generate_seed, optionally generate_top_k in the
// metadata), the C++ generate after loom::manual_seed(generate_seed) must give exactly Python's tokens.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "loom/loom.h"
#include "loom/models/gpt.h"

using loom::Tensor;
using loom::models::GPT;
using loom::models::GPTConfig;

namespace {

struct Options {
  std::string data = "/usr/share/games/fortunes";
  int64_t steps = 600;
  int64_t batch_size = 32;
  int64_t block_size = 32;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_embd = 64;
  double dropout = 0.0;
  double lr = 6e-3;
  double weight_decay = 0.1;
  int64_t warmup = 50;
  double grad_clip = 1.0;
  int64_t log_every = 50;
  int64_t sample_chars = 200;
  std::string prompt = "The ";
  uint64_t seed = 0;
  int threads = 1;
  std::string check_logits;
  double tol = 1e-5;
};

// Command-line flags (CLI11: --help lists them with their defaults). Exits with CLI11's message on bad input.
Options parse(int argc, char** argv) {
  Options o;
  CLI::App app{"Trains a character-level GPT (loom::models::GPT) with AdamW from C++, then samples from it.\n"
               "  --check-logits FILE [--tol X]: load a GPT state dict + input + logits written by Python and "
               "compare the logits instead."};
  auto positive = CLI::PositiveNumber;
  auto non_negative = CLI::NonNegativeNumber;
  app.add_option("--data", o.data, "a UTF-8 text file, or a folder of fortune files (Debian package 'fortunes')")
      ->capture_default_str();
  app.add_option("--steps", o.steps, "AdamW steps")->check(non_negative)->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "windows per step")->check(positive)->capture_default_str();
  app.add_option("--block-size", o.block_size, "context length")->check(positive)->capture_default_str();
  app.add_option("--n-layer", o.n_layer, "transformer blocks")->check(positive)->capture_default_str();
  app.add_option("--n-head", o.n_head, "attention heads")->check(positive)->capture_default_str();
  app.add_option("--n-embd", o.n_embd, "model width")->check(positive)->capture_default_str();
  app.add_option("--dropout", o.dropout, "dropout probability")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--lr", o.lr, "AdamW's peak learning rate: linear warm-up over --warmup steps, then cosine "
                 "decay to lr / 10")->check(positive)->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW's, on weight matrices only")->check(non_negative)
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "linear warm-up steps")->check(non_negative)->capture_default_str();
  app.add_option("--grad-clip", o.grad_clip, "clip the gradient norm to this (0: off)")->check(non_negative)
      ->capture_default_str();
  app.add_option("--log-every", o.log_every, "print the loss every N steps")->check(positive)->capture_default_str();
  app.add_option("--sample", o.sample_chars, "characters to generate at the end (0: none), temperature 0.8, "
                 "top-k 10")->check(non_negative)->capture_default_str();
  app.add_option("--prompt", o.prompt, "the text the sample continues")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the default generator: init, batches, sampling")->capture_default_str();
  app.add_option("--threads", o.threads, "loom + OpenBLAS threads (1 is faster than more for a model this small, "
                 "and robust on a busy machine; 0: OMP_NUM_THREADS or one per core)")->check(non_negative)
      ->capture_default_str();
  app.add_option("--check-logits", o.check_logits, "compare the C++ GPT's logits with a file written by Python");
  app.add_option("--tol", o.tol, "largest allowed abs difference for --check-logits")->check(positive)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return o;
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path.string() + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The text of a file, or of a folder of fortune files as loom.datasets.text_corpus reads it.
std::string read_corpus(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return read_all(path);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(path)) {
    std::string name = entry.path().filename().string();
    bool index = name.ends_with(".dat") || name.ends_with(".u8") || name.starts_with(".") || name == "off";
    if (!index && entry.is_regular_file() && !entry.is_symlink()) files.push_back(entry.path());
  }
  if (files.empty()) throw std::runtime_error("no text files in '" + path + "'");
  std::sort(files.begin(), files.end());
  std::string out;
  for (const auto& file : files) {
    std::string text = read_all(file), part;
    std::istringstream lines(text);
    std::string line;
    bool first = true;
    while (std::getline(lines, line)) {  // drop the '%' separator lines
      std::string bare = line.ends_with('\r') ? line.substr(0, line.size() - 1) : line;
      if (bare == "%") continue;
      part += (first ? "" : "\n") + line;
      first = false;
    }
    while (part.ends_with('\n')) part.pop_back();
    out += (out.empty() ? "" : "\n") + part + "\n";  // files separated by a blank line, as Python joins them
  }
  return out;
}

// (inputs, targets), each (batch, block): random windows of `ids` [begin, end).
std::pair<Tensor, Tensor> batch(const std::vector<int64_t>& ids, int64_t begin, int64_t end, int64_t batch_size,
                                int64_t block) {
  Tensor starts = loom::randint(begin, end - block - 1, {batch_size});
  const int64_t* s = starts.data<int64_t>();
  std::vector<int64_t> x(batch_size * block), y(batch_size * block);
  for (int64_t b = 0; b < batch_size; ++b) {
    std::copy_n(ids.begin() + s[b], block, x.begin() + b * block);
    std::copy_n(ids.begin() + s[b] + 1, block, y.begin() + b * block);
  }
  return {loom::from_blob_copy(x.data(), {batch_size, block}, loom::DType::Int64),
          loom::from_blob_copy(y.data(), {batch_size, block}, loom::DType::Int64)};
}

double eval_loss(GPT& model, const std::vector<int64_t>& ids, int64_t begin, int64_t end, int64_t block) {
  loom::NoGradGuard no_grad;
  model.eval();
  double total = 0;
  const int batches = 8;
  for (int i = 0; i < batches; ++i) {
    auto [x, y] = batch(ids, begin, end, 16, block);
    total += model.loss(x, y).item().to_double();
  }
  model.train();
  return total / batches;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return loom::max(loom::abs(loom::to_dtype(a, loom::DType::Float64) - loom::to_dtype(b, loom::DType::Float64)))
      .item()
      .to_double();
}

int64_t meta_int(const loom::serialize::Metadata& meta, const std::string& key, const std::string& file) {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("'" + file + "': metadata has no \"" + key + "\"");
  return std::stoll(it->second);
}

int check_logits(const Options& o) {
  auto contents = loom::serialize::load_safetensors(o.check_logits);
  const auto& meta = contents.metadata;
  GPTConfig config{.vocab_size = meta_int(meta, "vocab_size", o.check_logits),
                   .block_size = meta_int(meta, "block_size", o.check_logits),
                   .n_layer = meta_int(meta, "n_layer", o.check_logits),
                   .n_head = meta_int(meta, "n_head", o.check_logits),
                   .n_embd = meta_int(meta, "n_embd", o.check_logits),
                   .dropout = 0.0,
                   .bias = meta_int(meta, "bias", o.check_logits) != 0};
  Tensor idx, expected, generated;
  loom::nn::StateDict state;
  for (auto& [name, t] : contents.tensors) {
    if (name == "check.idx") idx = t;
    else if (name == "check.logits") expected = t;
    else if (name == "check.generated") generated = t;
    else state.emplace_back(name, t);
  }
  if (!idx.defined() || !expected.defined())
    throw std::runtime_error("'" + o.check_logits + "' lacks check.idx or check.logits");
  auto seed = meta.find("init_seed");
  if (seed != meta.end()) loom::manual_seed(std::stoull(seed->second));
  GPT model(config);
  if (expected.dtype() != loom::DType::Float32) model.to(expected.dtype());
  bool init_ok = true;
  if (seed != meta.end()) {  // the file holds Python's initial weights for this seed: ours must be the same
    auto own = model.state_dict();
    double init_diff = own.size() == state.size() ? 0.0 : std::numeric_limits<double>::infinity();
    for (const auto& [name, t] : own) {  // by name: the file's tensors are in its data order
      auto it = std::find_if(state.begin(), state.end(), [&](const auto& entry) { return entry.first == name; });
      bool same_shape = it != state.end() && it->second.sizes() == t.sizes();
      init_diff = std::max(init_diff, same_shape ? max_abs_diff(t, it->second)
                                                 : std::numeric_limits<double>::infinity());
    }
    init_ok = init_diff == 0.0;
    std::printf("check-logits: initialisation with seed %s vs the file's: max abs difference %.3g: %s\n",
                seed->second.c_str(), init_diff, init_ok ? "OK" : "MISMATCH");
  }
  model.load_state_dict(state, /*strict=*/true);
  model.eval();
  loom::NoGradGuard no_grad;
  Tensor logits = model.forward(idx);
  if (logits.sizes() != expected.sizes()) {
    std::printf("shape mismatch: C++ logits %s, Python logits %s\n", loom::shape_str(logits.sizes()).c_str(),
                loom::shape_str(expected.sizes()).c_str());
    return 1;
  }
  double diff = max_abs_diff(logits, expected);
  bool ok = diff <= o.tol;  // false for NaN too
  std::printf("check-logits: %zu tensors loaded, logits %s, max abs difference %.3g (tolerance %.3g): %s\n",
              state.size(), loom::shape_str(logits.sizes()).c_str(), diff, o.tol, ok ? "OK" : "MISMATCH");
  bool generate_ok = true;
  if (generated.defined()) {  // Python's model.generate(idx, n, temperature, top_k) after loom.manual_seed(seed)
    int64_t n = meta_int(meta, "generate_tokens", o.check_logits);
    auto top_k = meta.find("generate_top_k");
    loom::manual_seed(static_cast<uint64_t>(meta_int(meta, "generate_seed", o.check_logits)));
    Tensor out = model.generate(idx, n, std::stod(meta.at("generate_temperature")),
                                top_k == meta.end() ? std::nullopt : std::optional<int64_t>(std::stoll(top_k->second)));
    generate_ok = out.sizes() == generated.sizes() && max_abs_diff(out, generated) == 0.0;
    std::printf("check-logits: generate(%lld tokens, temperature %s, top_k %s) %s\n", static_cast<long long>(n),
                meta.at("generate_temperature").c_str(), top_k == meta.end() ? "none" : top_k->second.c_str(),
                generate_ok ? "gives Python's tokens: OK" : "differs from Python's tokens: MISMATCH");
  }
  return ok && init_ok && generate_ok ? 0 : 1;
}

int train(const Options& o) {
  if (o.threads > 0) loom::set_num_threads(o.threads);
  loom::manual_seed(o.seed);
  std::string text = read_corpus(o.data);
  loom::data::CharTokenizer tokenizer;
  tokenizer.train(text);
  std::vector<int32_t> ids32 = tokenizer.encode(text);
  std::vector<int64_t> ids(ids32.begin(), ids32.end());
  const int64_t n = static_cast<int64_t>(ids.size()), split = n * 9 / 10;
  if (split - o.block_size - 1 <= 0 || n - split - o.block_size - 1 <= 0) {
    std::fprintf(stderr, "error: '%s' is too short for --block-size %lld\n", o.data.c_str(),
                 static_cast<long long>(o.block_size));
    return 1;
  }
  GPT model(GPTConfig{.vocab_size = tokenizer.vocab_size(), .block_size = o.block_size, .n_layer = o.n_layer,
                      .n_head = o.n_head, .n_embd = o.n_embd, .dropout = o.dropout});
  std::printf("text: %lld characters, vocabulary %lld; GPT: %lld layers, %lld heads, width %lld, %.2fM parameters\n",
              static_cast<long long>(n), static_cast<long long>(tokenizer.vocab_size()),
              static_cast<long long>(o.n_layer), static_cast<long long>(o.n_head), static_cast<long long>(o.n_embd),
              model.num_params() / 1e6);
  std::printf("step 0: val loss %.4f (log(vocab) = %.4f)\n", eval_loss(model, ids, split, n, o.block_size),
              std::log(static_cast<double>(tokenizer.vocab_size())));
  // Weight decay on matrices only (nanoGPT's groups): embeddings and Linear weights decay, biases and norms do not.
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  loom::optim::AdamW optimizer(decay, {.lr = o.lr, .weight_decay = o.weight_decay});
  optimizer.add_param_group(no_decay, {.lr = o.lr, .weight_decay = 0.0});
  auto lr_at = [&](int64_t step) {  // warm-up, then cosine to lr / 10
    if (step <= o.warmup) return o.lr * static_cast<double>(step) / static_cast<double>(o.warmup);
    double progress =
        static_cast<double>(step - o.warmup) / static_cast<double>(std::max<int64_t>(1, o.steps - o.warmup));
    return o.lr / 10 + 0.5 * (o.lr - o.lr / 10) * (1 + std::cos(M_PI * std::min(1.0, progress)));
  };
  auto start = std::chrono::steady_clock::now();
  double running = 0;
  int64_t counted = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    auto [x, y] = batch(ids, 0, split, o.batch_size, o.block_size);
    for (size_t g = 0; g < optimizer.num_param_groups(); ++g) optimizer.set_lr(g, lr_at(step));
    Tensor loss = model.loss(x, y);
    optimizer.zero_grad();
    loss.backward();
    if (o.grad_clip > 0) loom::optim::clip_grad_norm_(model.parameters(), o.grad_clip);
    optimizer.step();
    running += loss.item().to_double(), ++counted;
    if (step % o.log_every == 0 || step == o.steps) {
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %lld: train loss %.4f (mean of the last %lld steps), %.1f s\n", static_cast<long long>(step),
                  running / counted, static_cast<long long>(counted), seconds);
      std::fflush(stdout);
      running = 0, counted = 0;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("trained %lld steps in %.1f s; val loss %.4f\n", static_cast<long long>(o.steps), seconds,
              eval_loss(model, ids, split, n, o.block_size));
  if (o.sample_chars > 0) {
    model.eval();
    Tensor prompt = loom::unsqueeze(tokenizer.encode_tensor(o.prompt.empty() ? "\n" : o.prompt), 0);
    Tensor out = model.generate(prompt, o.sample_chars, 0.8, 10);
    std::printf("sample:\n%s\n", tokenizer.decode(loom::flatten(out)).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    return o.check_logits.empty() ? train(o) : check_logits(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
