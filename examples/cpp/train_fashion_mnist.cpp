// Trains a classifier on Fashion-MNIST from C++ alone: loom::data::read_idx loads the gzip'd IDX files,
// loom::nn builds the model, loom::optim updates it, loom::data::BatchPrefetcher assembles shuffled
// mini-batches on a background thread. Prints the loss every --log-every steps and the test accuracy at the end.
//
//   make cpp-build && build/cmake/train_fashion_mnist            # MLP, 8 epochs: ~88% test accuracy, ~30 s
//   build/cmake/train_fashion_mnist --epochs 1 --model cnn       # a small CNN: ~89% after 1 epoch, ~3 min
//   build/cmake/train_fashion_mnist --help
//
// The data comes from Debian's package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), or --data DIR
// with the four files train-{images-idx3,labels-idx1}-ubyte.gz and t10k-{images-idx3,labels-idx1}-ubyte.gz.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "loom/loom.h"

namespace nn = loom::nn;
using loom::Scalar;
using loom::Tensor;

namespace {

struct Config {
  int epochs = 8;
  int64_t batch_size = 64;
  double lr = 0.01;  // SGD with momentum 0.9 (the MLP); the CNN uses the same
  std::string model = "mlp";
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t log_every = 200;
  uint64_t seed = 0;
};

// Command-line flags (CLI11: --help lists them with their defaults). Exits with CLI11's message on bad input.
Config parse(int argc, char** argv) {
  Config config;
  CLI::App app{"Trains a Fashion-MNIST classifier with loom from C++. Threads: OMP_NUM_THREADS (loom's ops and "
               "OpenBLAS), one per core by default."};
  app.add_option("--epochs", config.epochs, "passes over the 60,000 training images")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--batch-size", config.batch_size, "images per SGD step")->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr", config.lr, "learning rate of SGD with momentum 0.9")->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--model", config.model, "mlp: 784-256-128-10 with ReLU; cnn: two 5x5 conv + pool blocks and a "
                 "linear layer")->check(CLI::IsMember({"mlp", "cnn"}))->capture_default_str();
  app.add_option("--data", config.data, "folder with the gzip'd IDX files (Debian package dataset-fashion-mnist)")
      ->capture_default_str();
  app.add_option("--log-every", config.log_every, "print the training loss every N steps")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", config.seed, "seed of the default generator: initialisation and shuffling")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return config;
}

// Images as float32 (N, 784) normalised with the training set's mean and std; labels as int64 (N).
std::pair<Tensor, Tensor> load_split(const std::string& dir, const std::string& split) {
  Tensor images = loom::data::read_idx(dir + "/" + split + "-images-idx3-ubyte.gz");  // uint8 (N, 28, 28)
  Tensor labels = loom::data::read_idx(dir + "/" + split + "-labels-idx1-ubyte.gz");  // uint8 (N)
  if (images.dim() != 3 || labels.dim() != 1 || images.size(0) != labels.size(0)) {
    loom::fail(loom::ErrorKind::Value, "train_fashion_mnist: ", split, " images ", loom::shape_str(images.sizes()),
               " and labels ", loom::shape_str(labels.sizes()), " do not match");
  }
  Tensor x = loom::to_dtype(loom::reshape(images, {images.size(0), 28 * 28}), loom::DType::Float32);
  x = loom::div(loom::sub(loom::div(x, Scalar(255.0)), Scalar(0.2860)), Scalar(0.3530));
  return {x, loom::to_dtype(labels, loom::DType::Int64)};
}

std::shared_ptr<nn::Sequential> make_model(const std::string& kind) {
  if (kind == "mlp") {
    return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
                                            std::make_shared<nn::Linear>(256, 128), std::make_shared<nn::ReLU>(),
                                            std::make_shared<nn::Linear>(128, 10));
  }
  auto to_image = std::make_shared<nn::Functional>(
      [](const Tensor& x) { return loom::reshape(x, {x.size(0), 1, 28, 28}); }, "ToImage");
  return std::make_shared<nn::Sequential>(
      to_image, std::make_shared<nn::Conv2d>(1, 16, 5, nn::Conv2dOptions{.padding = 2}),
      std::make_shared<nn::BatchNorm2d>(16), std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(16, 32, 5, nn::Conv2dOptions{.padding = 2}), std::make_shared<nn::BatchNorm2d>(32),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(32 * 7 * 7, 10));
}

// The shuffled batches of one epoch: a random permutation (default generator) cut into batch_size rows.
std::vector<std::vector<int64_t>> shuffled_batches(int64_t n, int64_t batch_size) {
  Tensor perm = loom::randperm(n);
  const int64_t* order = perm.data<int64_t>();
  std::vector<std::vector<int64_t>> batches;
  for (int64_t start = 0; start < n; start += batch_size)
    batches.emplace_back(order + start, order + std::min(n, start + batch_size));
  return batches;
}

double accuracy(nn::Module& model, const Tensor& x, const Tensor& y) {
  loom::NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0, n = x.size(0);
  for (int64_t start = 0; start < n; start += 1000) {
    int64_t end = std::min(n, start + 1000);
    Tensor predicted = loom::argmax(model.forward(loom::slice(x, 0, start, end)), 1);
    correct += loom::sum(loom::eq(predicted, loom::slice(y, 0, start, end))).item().to_int();
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  Config config = parse(argc, argv);
  loom::manual_seed(config.seed);

  Tensor train_x, train_y, test_x, test_y;
  try {
    std::tie(train_x, train_y) = load_split(config.data, "train");
    std::tie(test_x, test_y) = load_split(config.data, "t10k");
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fprintf(stderr,
                 "Fashion-MNIST is provided by the Debian package dataset-fashion-mnist (apt-get install "
                 "dataset-fashion-mnist, files under /usr/share/datasets/fashion-mnist); or pass --data DIR with "
                 "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
                 "t10k-labels-idx1-ubyte.gz.\n");
    return 1;
  }
  std::printf("Fashion-MNIST: %lld training and %lld test images from %s\n",
              static_cast<long long>(train_x.size(0)), static_cast<long long>(test_x.size(0)), config.data.c_str());

  auto model = make_model(config.model);
  int64_t num_params = 0;
  for (const Tensor& p : model->parameters()) num_params += p.numel();
  std::printf("%s\n%lld parameters, %d threads\n", model->str().c_str(), static_cast<long long>(num_params),
              loom::get_num_threads());

  loom::optim::SGD optimizer(model->parameters(), {.lr = config.lr, .momentum = 0.9});
  auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  int64_t step = 0;
  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    // A background thread gathers each batch's rows while the model trains on the previous one.
    loom::data::BatchPrefetcher batches({train_x, train_y}, shuffled_batches(train_x.size(0), config.batch_size));
    double loss_sum = 0;
    int64_t loss_count = 0;
    for (std::vector<Tensor> batch; batches.next(batch); ++step) {
      Tensor loss = loom::cross_entropy(model->forward(batch[0]), batch[1]);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item().to_double();
      ++loss_count;
      if ((step + 1) % config.log_every == 0) {
        std::printf("epoch %d  step %6lld  loss %.4f  (%.1f s)\n", epoch, static_cast<long long>(step + 1),
                    loss_sum / static_cast<double>(loss_count), seconds());
        std::fflush(stdout);
        loss_sum = 0;
        loss_count = 0;
      }
    }
    std::printf("epoch %d done (%.1f s)\n", epoch, seconds());
  }
  double train_time = seconds();
  double test_accuracy = accuracy(*model, test_x, test_y);
  std::printf("test accuracy %.2f%% on %lld images after %d epochs; training took %.1f s\n", 100.0 * test_accuracy,
              static_cast<long long>(test_x.size(0)), config.epochs, train_time);
  return 0;
}
