/*
 * fuzz_torch_save.cpp - libFuzzer target: our torch.save reader (src/torchc/torch_save_reader.cpp)
 * on hostile files. Byte 0 even: the rest is data.pkl inside a well-formed torch.save zip
 * (written with libtorch's own zip writer, with one 64-byte storage record "0"), so that the
 * fuzzer works on the pickle reader; odd: the rest is the whole file (the zip layer too).
 * Every input must end in a result or an exception, never a crash, a leak or a hang.
 */
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "torchc/torch_save.h"

static std::string scratch_file()
{
    const char *tmp = std::getenv("TMPDIR");
    return std::string(tmp && *tmp ? tmp : "/tmp") + "/fuzz-torch-save-" +
           std::to_string(getpid()) + ".pth";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 1)
        return 0;
    static const std::string path = scratch_file();
    try {
        if (data[0] & 1) {
            FILE *f = std::fopen(path.c_str(), "wb");
            if (!f)
                std::abort();
            std::fwrite(data + 1, 1, len - 1, f);
            std::fclose(f);
        } else {
            caffe2::serialize::PyTorchStreamWriter writer(path);
            writer.writeRecord("data.pkl", data + 1, len - 1);
            static const char storage[64] = {0};
            writer.writeRecord("data/0", storage, sizeof storage);
            writer.writeRecord("byteorder", "little", 6);
            writer.writeEndOfFile();
        }
    } catch (...) {
        return 0;
    }
    try {
        tc::named_tensors items = tc::read_torch_save(path);
        for (auto &kv : items)
            (void)kv.second.sum().item<double>();
    } catch (...) {
    }
    return 0;
}
