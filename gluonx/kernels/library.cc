// Library entry point: MXNet calls initialize() after loading the shared
// object; the operators register themselves from their own files.
#include "common.h"

mxnet::ext::MXReturnValue initialize(int version) {
  if (version < 10700) {
    MX_ERROR_MSG << "gluonx kernels need MXNet >= 1.7, got version " << version;
    return mxnet::ext::MX_FAIL;
  }
  return mxnet::ext::MX_SUCCESS;
}
