// Python bindings of pcdkit's CPU kernels (built together by kernels/__init__.py).
#include <torch/extension.h>

#include <vector>

torch::Tensor score_net_int8(torch::Tensor off, int64_t k, std::vector<torch::Tensor> cond,
                             torch::Tensor wxyz, torch::Tensor aff, torch::Tensor w0,
                             torch::Tensor b0, torch::Tensor w1, torch::Tensor b1,
                             torch::Tensor aff_out, torch::Tensor w_out, torch::Tensor b_out,
                             int64_t tile);
torch::Tensor knn_brute(torch::Tensor q, torch::Tensor r, int64_t k);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("score_net_int8", &score_net_int8,
        "the score network's inference forward, int8 products over row tiles (AVX512-VNNI)");
  m.def("knn_brute", &knn_brute, "exact k nearest neighbours of small point sets (AVX-512)");
}
