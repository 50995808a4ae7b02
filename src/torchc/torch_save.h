/*
 * torch_save.h - the file format of Python's torch.save for a dict of tensors: a zip archive
 * holding data.pkl (a protocol-2 pickle) and one record per storage under data/.
 *
 * We read and write it ourselves, over libtorch's zip reader and writer, because libtorch's
 * pickle_load cannot read an OrderedDict and its pickle_save output is refused by Python's
 * torch.load(weights_only=True) (it wraps the dict in torch.jit._pickle.restore_type_tag).
 */
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace tc {

using named_tensors = std::vector<std::pair<std::string, at::Tensor>>;

/* Both throw std::exception (or c10::Error from the zip layer) with a readable message. */
named_tensors read_torch_save(const std::string &path);
/* Writes what torch.save(OrderedDict(items)) writes: CPU tensors, one storage each. */
void write_torch_save(const std::string &path, const named_tensors &items);

/* "torch.FloatStorage" <-> at::kFloat, for the storage classes a state dict uses. */
const char *storage_class_for(at::ScalarType t);  /* nullptr if none */
bool scalar_type_for_storage(const std::string &cls, at::ScalarType *out);

} // namespace tc
