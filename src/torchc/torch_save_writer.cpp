/*
 * torch_save_writer.cpp - writes a dict of tensors as Python's torch.save(state_dict) does:
 * a protocol-2 pickle of collections.OrderedDict whose values are rebuilt by
 * torch._utils._rebuild_tensor_v2 from typed storages, each storage a record data/<n> of the
 * zip. Only globals that torch.load(weights_only=True) allows appear in it. Also home of the
 * storage class table the reader shares.
 */
#include <caffe2/serialize/inline_container.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "torch_save.h"

namespace {

const struct {
    at::ScalarType type;
    const char *cls;
} storage_classes[] = {
    {at::kFloat, "torch.FloatStorage"},   {at::kDouble, "torch.DoubleStorage"},
    {at::kHalf, "torch.HalfStorage"},     {at::kBFloat16, "torch.BFloat16Storage"},
    {at::kLong, "torch.LongStorage"},     {at::kInt, "torch.IntStorage"},
    {at::kShort, "torch.ShortStorage"},   {at::kChar, "torch.CharStorage"},
    {at::kByte, "torch.ByteStorage"},     {at::kBool, "torch.BoolStorage"},
};

/* Appends pickle opcodes to a byte string. */
class pickle_out {
  public:
    std::string bytes;

    void op(char c)
    {
        bytes.push_back(c);
    }
    void global(const std::string &module, const std::string &name)
    {
        op('c');
        bytes += module + "\n" + name + "\n";
    }
    void str(const std::string &s)
    {
        op('X');
        le((uint64_t)s.size(), 4);
        bytes += s;
    }
    void integer(int64_t v)
    {
        if (v >= 0 && v < 256) {
            op('K');
            le((uint64_t)v, 1);
        } else if (v >= 0 && v < 65536) {
            op('M');
            le((uint64_t)v, 2);
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            op('J');
            le((uint64_t)(uint32_t)(int32_t)v, 4);
        } else {
            op((char)0x8a); /* LONG1, 8 bytes two's complement */
            le(8, 1);
            le((uint64_t)v, 8);
        }
    }
    void int_tuple(at::IntArrayRef values)
    {
        op('(');
        for (int64_t v : values)
            integer(v);
        op('t');
    }

  private:
    void le(uint64_t v, int n)
    {
        for (int i = 0; i < n; i++)
            bytes.push_back((char)((v >> (8 * i)) & 0xff));
    }
};

} // namespace

namespace tc {

const char *storage_class_for(at::ScalarType t)
{
    for (auto &s : storage_classes)
        if (s.type == t)
            return s.cls;
    return nullptr;
}

bool scalar_type_for_storage(const std::string &cls, at::ScalarType *out)
{
    for (auto &s : storage_classes)
        if (cls == s.cls) {
            *out = s.type;
            return true;
        }
    return false;
}

void write_torch_save(const std::string &path, const named_tensors &items)
{
    std::vector<at::Tensor> storages;
    pickle_out p;
    p.op((char)0x80); /* PROTO 2 */
    p.op(2);
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.op('(');
    for (auto &kv : items) {
        at::Tensor t = kv.second.detach().to(at::kCPU).contiguous();
        const char *cls = storage_class_for(t.scalar_type());
        if (!cls)
            throw std::invalid_argument("cannot save \"" + kv.first + "\": dtype " +
                                        std::string(c10::toString(t.scalar_type())) +
                                        " has no torch.save storage class here");
        std::string key = std::to_string(storages.size());
        storages.push_back(t);
        p.str(kv.first);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.op('(');
        p.op('(');                     /* persistent id of the storage */
        p.str("storage");
        size_t dot = std::strlen("torch.");
        p.global("torch", cls + dot);
        p.str(key);
        p.str("cpu");
        p.integer(t.numel());
        p.op('t');
        p.op('Q');                     /* BINPERSID */
        p.integer(0);                  /* storage offset */
        p.int_tuple(t.sizes());
        p.int_tuple(t.strides());
        p.op((char)0x89);              /* requires_grad = False */
        p.global("collections", "OrderedDict");
        p.op(')');
        p.op('R');                     /* backward hooks: OrderedDict() */
        p.op('t');
        p.op('R');
    }
    p.op('u');
    p.op('.');

    std::unique_ptr<FILE, int (*)(FILE *)> f(fopen(path.c_str(), "wb"), fclose);
    if (!f)
        throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    bool write_failed = false;
    {
        caffe2::serialize::PyTorchStreamWriter zip([&](const void *buf, size_t n) -> size_t {
            if (n && fwrite(buf, 1, n, f.get()) != n)
                write_failed = true;
            return n;
        });
        zip.writeRecord("data.pkl", p.bytes.data(), p.bytes.size());
        zip.writeRecord("byteorder", "little", 6);
        for (size_t i = 0; i < storages.size(); i++)
            zip.writeRecord("data/" + std::to_string(i), storages[i].data_ptr(),
                            storages[i].nbytes());
        zip.writeEndOfFile();
    }
    if (write_failed || fflush(f.get()) != 0 || ferror(f.get()))
        throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    FILE *raw = f.release();
    if (fclose(raw) != 0)
        throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

} // namespace tc
