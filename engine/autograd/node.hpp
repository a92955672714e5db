// The autograd graph, define-by-run: each differentiable op that sees an input requiring grad
// records a Node holding its inputs and a backward function that maps the gradient of the op's
// output to the gradients of its inputs. Backward functions capture outputs only detached
// (out.detach()), so a tensor never owns the node that owns it.
#pragma once

#include "engine/tensor.hpp"

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

namespace flexnn {

// Gradients of the inputs, one per input, in order; an undefined Tensor where none flows.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;
  std::vector<Tensor> inputs;
  BackwardFn backward;  // cleared when the graph is freed after backward()
};

// Whether ops record the graph (thread-local; on by default).
bool grad_mode_enabled();

// Sets graph recording on or off in its scope, then restores it, like torch's AutoGradMode.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// Disables graph recording in its scope, like torch::NoGradGuard.
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// True when recording is on and some input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

// Attaches a node to `output` when any input requires grad (and grad mode is on); returns output.
Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

// Runs back-propagation from root with its gradient: topological order, gradients accumulated
// into leaves' grad(), the graph freed as it goes.
void run_backward(const Tensor& root, const Tensor& root_grad);

}  // namespace flexnn
