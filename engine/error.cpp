// Anchors flexnn::Error's vtable in the library.
#include "engine/error.hpp"
