// The whole public C++ API in one include: tensors, ops, autograd, nn, optim, checkpoints.
#pragma once

#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/io/checkpoint.hpp"
#include "engine/nn/flexible.hpp"
#include "engine/nn/layers.hpp"
#include "engine/nn/module.hpp"
#include "engine/ops.hpp"
#include "engine/optim/sgd.hpp"
#include "engine/optim/step_lr.hpp"
#include "engine/tensor.hpp"
#include "kernels/cpu/parallel.hpp"
