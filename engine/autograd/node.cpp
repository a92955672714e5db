// Graph recording, the no-grad guard, and the backward pass: a depth-first topological sort of
// the nodes reachable from the root, then one sweep in reverse order that sums the gradients
// arriving at each tensor before its node runs.
#include "engine/autograd/node.hpp"

#include "engine/ops.hpp"

#include <unordered_map>
#include <unordered_set>

namespace flexnn {
namespace {

thread_local bool grad_enabled = true;

// Adds `incoming` to the running gradient sum for a tensor, never in place on a shared buffer.
void accumulate(Tensor& sum, const Tensor& incoming) {
  sum = sum.defined() ? ops::add(sum, incoming) : incoming;
}

// True when nothing else refers to t or its storage, so it can become a leaf's grad without a copy.
bool owns_storage(const Tensor& t) { return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1; }

// Nodes reachable from root, each before the nodes of its inputs. Shared pointers keep every node
// alive for the whole pass, since freeing a node's inputs may drop the last other reference.

std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      const Tensor& input = node->inputs[next_input++];
      const std::shared_ptr<Node> child = input.defined() ? input.grad_fn() : nullptr;
      if (child != nullptr && visited.insert(child.get()).second) stack.emplace_back(child, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};  // root first
}

}  // namespace

bool grad_mode_enabled() { return grad_enabled; }

GradModeGuard::GradModeGuard(bool enabled) : previous_(grad_enabled) { grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { grad_enabled = previous_; }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!grad_enabled) return output;
  bool needed = false;
  for (const Tensor& t : inputs) needed = needed || (t.defined() && t.requires_grad());
  if (!needed) return output;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl().grad_fn = std::move(node);
  output.impl().requires_grad = true;
  return output;
}

void run_backward(const Tensor& root, const Tensor& root_grad) {
  FLEXNN_CHECK(root.requires_grad(), "backward: the tensor does not require grad and has no grad_fn");
  FLEXNN_CHECK(root_grad.shape() == root.shape(), "backward: gradient of shape {} for a tensor of shape {}",
               shape_str(root_grad.shape()), shape_str(root.shape()));
  NoGradGuard no_grad;
  if (root.is_leaf()) {
    Tensor sum = root.grad();
    accumulate(sum, root_grad.clone());
    root.impl().grad = sum.impl_ptr();
    return;
  }
  std::unordered_map<Node*, Tensor> pending;  // gradient flowing into each node's output
  pending[root.grad_fn().get()] = root_grad;
  for (const std::shared_ptr<Node>& node : topological_order(root.grad_fn())) {
    FLEXNN_CHECK(node->backward != nullptr,
                 "backward: the graph through '{}' was already freed; call backward() once per forward",
                 node->name);
    auto found = pending.find(node.get());
    if (found == pending.end()) continue;
    Tensor grad_output = std::move(found->second);
    pending.erase(found);
    std::vector<Tensor> grads = node->backward(grad_output);
    FLEXNN_CHECK(grads.size() == node->inputs.size(), "backward of '{}' returned {} gradients for {} inputs",
                 node->name, grads.size(), node->inputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& input = node->inputs[i];
      if (!grads[i].defined() || !input.defined() || !input.requires_grad()) continue;
      FLEXNN_CHECK(grads[i].shape() == input.shape(), "backward of '{}': gradient {} for input {} of shape {}",
                   node->name, shape_str(grads[i].shape()), i, shape_str(input.shape()));
      if (input.is_leaf()) {
        TensorImpl& leaf = input.impl();
        if (leaf.grad) {
          Tensor(leaf.grad).copy_(ops::add(Tensor(leaf.grad), grads[i]));
        } else {
          leaf.grad = owns_storage(grads[i]) ? grads[i].impl_ptr() : grads[i].clone().impl_ptr();
        }
      } else {
        accumulate(pending[input.grad_fn().get()], grads[i]);
      }
    }
    node->backward = nullptr;  // frees the saved tensors and the references to the inputs
    node->inputs.clear();
  }
}

}  // namespace flexnn
