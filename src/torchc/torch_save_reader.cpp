/*
 * torch_save_reader.cpp - reads the dict of tensors inside a torch.save zip file.
 *
 * Why this exists: libtorch's own unpickler (torch::pickle_load) turns collections.OrderedDict
 * into None, so it cannot read what Python's torch.save(model.state_dict()) writes (checked
 * with libtorch 2.15). This reader understands the small part of the pickle language that a
 * state dict uses - dicts and OrderedDicts, strings, numbers, tuples, lists, tensors rebuilt by
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter and their storages - and refuses
 * everything else. It never calls any Python-defined function, so a hostile file can at worst
 * be rejected. The zip container and the storage records are read with libtorch's
 * PyTorchStreamReader.
 *
 * Not supported: the legacy (pre-1.6, non-zip) torch.save format, and pickled modules.
 */
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <unordered_map>
#include <vector>

#include "torch_save.h"

namespace {

struct value;
using value_ptr = std::shared_ptr<value>;

struct value {
    enum kind_t { none, boolean, integer, real, string, tuple, list, dict, global, storage, tensor };
    kind_t kind = none;
    int64_t i = 0;
    double f = 0;
    std::string s; /* string; global: "module.name" */
    std::vector<value_ptr> items;
    std::vector<std::pair<value_ptr, value_ptr>> entries;
    at::Tensor t; /* storage: a 1-d tensor over the whole storage; tensor: the tensor */
    int depth = 0; /* nesting of containers below this one */
    /* Set once this value sits inside a container. A pickle builds every child completely
     * before placing it in its parent, so a container that is already inside another one is
     * never changed again; refusing that keeps `depth` exact (a list built parent-first, then
     * filled, would otherwise count as depth 1 however deep it grows) and makes cycles
     * impossible (two containers appended into each other). */
    bool placed = false;

    value() = default;
    value(const value &) = delete;
    value &operator=(const value &) = delete;
    /* Frees the children without one level of recursion per level of nesting: children whose
     * last owner is this value are emptied into a work list first. */
    ~value()
    {
        std::vector<value_ptr> pending;
        take_children(pending);
        while (!pending.empty()) {
            value_ptr v = std::move(pending.back());
            pending.pop_back();
            if (v.use_count() == 1)
                v->take_children(pending);
        }
    }
    void take_children(std::vector<value_ptr> &out)
    {
        for (auto &item : items)
            out.push_back(std::move(item));
        for (auto &kv : entries) {
            out.push_back(std::move(kv.first));
            out.push_back(std::move(kv.second));
        }
        items.clear();
        entries.clear();
    }
};

const char *kind_name(value::kind_t k)
{
    static const char *names[] = {"None", "bool",   "int",    "float",   "str",   "tuple",
                                  "list", "dict",   "global", "storage", "tensor"};
    return names[k];
}

value_ptr make(value::kind_t k)
{
    auto v = std::make_shared<value>();
    v->kind = k;
    return v;
}

[[noreturn]] void fail(const std::string &what)
{
    throw std::runtime_error(what);
}

/* Limits that keep a hostile file from exhausting memory through the pickle itself. */
constexpr size_t max_stack = 1u << 20;
constexpr size_t max_container = 1u << 22;
/* A state dict memoises about ten entries and makes about twenty values per tensor, so these
 * leave room for tens of thousands of tensors while capping what a pickle of nothing but
 * memoised or pushed values can cost (a value is about 150 bytes, a memo entry about 50). */
constexpr size_t max_memo = 1u << 19;
constexpr size_t max_values = 1u << 19;
/* data.pkl of a state dict is a few hundred bytes per tensor. */
constexpr size_t max_pickle_bytes = 256u << 20;
/* A state dict nests a few levels (dict, tensor tuple, size tuple); far deeper is hostile,
 * and would also make freeing the values recurse too deep. */
constexpr int max_depth = 64;

/* Refuses to change a container that already sits inside another one (see value::placed). */
void check_open(const value &container)
{
    if (container.placed)
        fail(std::string("pickle changes a ") + kind_name(container.kind) +
             " after putting it inside another container (a cycle or a hostile nesting)");
}

/* Records that `child` is now inside `container`, refusing cycles and deep nesting. */
void nest(value &container, const value_ptr &child)
{
    if (child.get() == &container)
        fail("pickle puts a container inside itself");
    child->placed = true;
    int depth = child->depth + 1;
    if (depth > max_depth)
        fail("pickle nests containers deeper than " + std::to_string(max_depth));
    if (depth > container.depth)
        container.depth = depth;
}

class unpickler {
  public:
    /* file_size: the size of the file on disk; no storage may claim more (torch.save stores
     * its records uncompressed, so a record larger than the file is a compression bomb). */
    unpickler(const std::string &pickle, caffe2::serialize::PyTorchStreamReader &archive,
              uint64_t file_size)
        : data_(pickle), archive_(archive), file_size_(file_size)
    {
        none_ = make(value::none);
        true_ = make(value::boolean);
        true_->i = 1;
        false_ = make(value::boolean);
    }

    value_ptr run()
    {
        for (;;) {
            uint8_t op = byte();
            if (op == '.')
                break;
            step(op);
            if (stack_.size() > max_stack)
                fail("pickle stack too deep");
        }
        if (stack_.size() != 1)
            fail("pickle ended with " + std::to_string(stack_.size()) + " values on the stack");
        return stack_.back();
    }

  private:
    const std::string &data_;
    caffe2::serialize::PyTorchStreamReader &archive_;
    uint64_t file_size_;
    uint64_t storage_bytes_ = 0; /* all storages read so far */
    size_t values_ = 0;          /* values made so far */
    value_ptr none_, true_, false_; /* shared: they hold no children and never change */
    size_t pos_ = 0;
    std::vector<value_ptr> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, value_ptr> memo_;
    std::unordered_map<std::string, at::Tensor> storages_;

    value_ptr make(value::kind_t k)
    {
        if (++values_ > max_values)
            fail("pickle makes more than " + std::to_string(max_values) + " values");
        return ::make(k);
    }
    const char *take(size_t n)
    {
        if (n > data_.size() - pos_)
            fail("pickle is truncated at byte " + std::to_string(pos_));
        const char *p = data_.data() + pos_;
        pos_ += n;
        return p;
    }
    uint8_t byte()
    {
        return (uint8_t)*take(1);
    }
    uint64_t le(size_t n)
    {
        const char *p = take(n);
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v |= (uint64_t)(uint8_t)p[i] << (8 * i);
        return v;
    }
    std::string line()
    {
        size_t end = data_.find('\n', pos_);
        if (end == std::string::npos || end - pos_ > 256)
            fail("malformed GLOBAL in pickle");
        std::string s = data_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return s;
    }
    value_ptr pop()
    {
        if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
            fail("pickle pops from an empty stack");
        value_ptr v = stack_.back();
        stack_.pop_back();
        return v;
    }
    value_ptr &top()
    {
        if (stack_.empty())
            fail("pickle reads an empty stack");
        return stack_.back();
    }
    std::vector<value_ptr> pop_to_mark()
    {
        if (marks_.empty())
            fail("pickle has no MARK to pop to");
        size_t m = marks_.back();
        marks_.pop_back();
        std::vector<value_ptr> items(stack_.begin() + (std::ptrdiff_t)m, stack_.end());
        stack_.resize(m);
        return items;
    }
    void push_string(size_t n)
    {
        if (n > data_.size() - pos_)
            fail("pickle string runs past the end");
        auto v = make(value::string);
        v->s.assign(take(n), n);
        stack_.push_back(v);
    }
    void put(uint64_t key)
    {
        if (memo_.size() >= max_memo)
            fail("pickle memo holds more than " + std::to_string(max_memo) + " entries");
        memo_[key] = top();
    }
    void get(uint64_t key)
    {
        auto it = memo_.find(key);
        if (it == memo_.end())
            fail("pickle refers to memo entry " + std::to_string(key) + " that was never set");
        stack_.push_back(it->second);
    }
    void push_tuple(std::vector<value_ptr> items)
    {
        auto v = make(value::tuple);
        for (auto &item : items)
            nest(*v, item);
        v->items = std::move(items);
        stack_.push_back(v);
    }
    static void set_items(value &d, std::vector<value_ptr> &kv)
    {
        if (d.kind != value::dict)
            fail(std::string("pickle sets items on a ") + kind_name(d.kind));
        check_open(d);
        if (kv.size() % 2)
            fail("pickle SETITEMS with an odd number of values");
        if (d.entries.size() + kv.size() / 2 > max_container)
            fail("dict too large");
        for (size_t i = 0; i < kv.size(); i += 2) {
            nest(d, kv[i]);
            nest(d, kv[i + 1]);
            d.entries.emplace_back(kv[i], kv[i + 1]);
        }
    }

    void step(uint8_t op)
    {
        switch (op) {
        case 0x80: take(1); break;         /* PROTO */
        case 0x95: take(8); break;         /* FRAME */
        case '(': marks_.push_back(stack_.size()); break;
        case 'N': stack_.push_back(none_); break;
        case 0x88: stack_.push_back(true_); break;  /* NEWTRUE */
        case 0x89: stack_.push_back(false_); break; /* NEWFALSE */
        case 'K': push_int((int64_t)le(1)); break;
        case 'M': push_int((int64_t)le(2)); break;
        case 'J': push_int((int64_t)(int32_t)(uint32_t)le(4)); break;
        case 0x8a: {                       /* LONG1 */
            size_t n = byte();
            if (n > 8)
                fail("integer too large in pickle");
            uint64_t v = n ? le(n) : 0;
            if (n && n < 8 && (v >> (8 * n - 1)) & 1)
                v |= ~0ull << (8 * n); /* sign-extend */
            push_int((int64_t)v);
            break;
        }
        case 'G': {                        /* BINFLOAT, big-endian */
            const char *p = take(8);
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++)
                bits = bits << 8 | (uint8_t)p[i];
            auto v = make(value::real);
            std::memcpy(&v->f, &bits, sizeof bits);
            stack_.push_back(v);
            break;
        }
        case 'X': push_string((size_t)le(4)); break;      /* BINUNICODE */
        case 0x8c: push_string(byte()); break;            /* SHORT_BINUNICODE */
        case 0x8d: push_string((size_t)le(8)); break;     /* BINUNICODE8 */
        case 'q': put(le(1)); break;                      /* BINPUT */
        case 'r': put(le(4)); break;                      /* LONG_BINPUT */
        case 0x94: put(memo_.size()); break;              /* MEMOIZE */
        case 'h': get(le(1)); break;                      /* BINGET */
        case 'j': get(le(4)); break;                      /* LONG_BINGET */
        case '0': pop(); break;                           /* POP */
        case '2': stack_.push_back(top()); break;         /* DUP */
        case '1': pop_to_mark(); break;                   /* POP_MARK */
        case ')': push_tuple({}); break;
        case 't': push_tuple(pop_to_mark()); break;
        case 0x85: push_tuple({pop()}); break;
        case 0x86: {
            auto b = pop(), a = pop();
            push_tuple({a, b});
            break;
        }
        case 0x87: {
            auto c = pop(), b = pop(), a = pop();
            push_tuple({a, b, c});
            break;
        }
        case ']': stack_.push_back(make(value::list)); break;
        case '}': stack_.push_back(make(value::dict)); break;
        case 'a': {                                        /* APPEND */
            auto v = pop();
            append(*top(), {v});
            break;
        }
        case 'e': {                                        /* APPENDS */
            auto items = pop_to_mark();
            append(*top(), items);
            break;
        }
        case 's': {                                        /* SETITEM */
            auto v = pop(), k = pop();
            std::vector<value_ptr> kv{k, v};
            set_items(*top(), kv);
            break;
        }
        case 'u': {                                        /* SETITEMS */
            auto kv = pop_to_mark();
            set_items(*top(), kv);
            break;
        }
        case 'c': {                                        /* GLOBAL */
            std::string module = line();
            std::string name = line();
            auto v = make(value::global);
            v->s = module + "." + name;
            stack_.push_back(v);
            break;
        }
        case 'Q': {                                        /* BINPERSID */
            auto pid = pop();
            stack_.push_back(load_storage(*pid));
            break;
        }
        case 'R': {                                        /* REDUCE */
            auto args = pop();
            auto fn = pop();
            stack_.push_back(reduce(*fn, *args));
            break;
        }
        case 'b': {                                        /* BUILD */
            pop(); /* the state: OrderedDict's _metadata, tensor hooks... not needed */
            auto &obj = top();
            if (obj->kind != value::dict && obj->kind != value::tensor)
                fail(std::string("pickle sets the state of a ") + kind_name(obj->kind));
            break;
        }
        default: {
            char buf[64];
            snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x at byte %zu", op, pos_ - 1);
            fail(std::string(buf) + " (the file holds more than a dict of tensors)");
        }
        }
    }

    void push_int(int64_t i)
    {
        auto v = make(value::integer);
        v->i = i;
        stack_.push_back(v);
    }

    static void append(value &list, const std::vector<value_ptr> &items)
    {
        if (list.kind != value::list)
            fail(std::string("pickle appends to a ") + kind_name(list.kind));
        check_open(list);
        if (list.items.size() + items.size() > max_container)
            fail("list too large");
        for (auto &item : items)
            nest(list, item);
        list.items.insert(list.items.end(), items.begin(), items.end());
    }

    static at::ScalarType storage_dtype(const std::string &cls)
    {
        at::ScalarType t;
        if (!tc::scalar_type_for_storage(cls, &t))
            fail("unsupported storage type " + cls);
        return t;
    }

    /* pid = ('storage', <class torch.XStorage>, key, location, numel) */
    value_ptr load_storage(const value &pid)
    {
        if (pid.kind != value::tuple || pid.items.size() < 5 ||
            pid.items[0]->kind != value::string || pid.items[0]->s != "storage" ||
            pid.items[1]->kind != value::global || pid.items[2]->kind != value::string ||
            pid.items[4]->kind != value::integer)
            fail("malformed storage reference in pickle");
        at::ScalarType dtype = storage_dtype(pid.items[1]->s);
        const std::string &key = pid.items[2]->s;
        int64_t numel = pid.items[4]->i;
        auto v = make(value::storage);
        auto cached = storages_.find(key);
        if (cached != storages_.end()) {
            v->t = cached->second;
            return v;
        }
        std::string record = "data/" + key;
        if (!archive_.hasRecord(record))
            fail("the archive has no record " + record);
        size_t elem = c10::elementSize(dtype);
        if (numel < 0 || (uint64_t)numel > (uint64_t)1 << 40)
            fail("storage " + key + " has an impossible size");
        size_t expected = (size_t)numel * elem;
        size_t record_size = archive_.getRecordSize(record);
        if (record_size != expected)
            fail("storage " + key + " holds " + std::to_string(record_size) + " bytes, expected " +
                 std::to_string(expected));
        /* Checked before anything is allocated or inflated: the sizes above are what the file
         * claims, and a deflated record can claim a thousand times its own size. */
        uint64_t offset = archive_.getRecordOffset(record);
        if (offset > file_size_ || expected > file_size_ - offset ||
            expected > file_size_ - storage_bytes_)
            fail("storage " + key + " claims " + std::to_string(expected) +
                 " bytes, more than the file itself holds (" + std::to_string(file_size_) +
                 " bytes); torch.save stores tensors uncompressed, so the file is damaged or "
                 "hostile");
        storage_bytes_ += expected;
        at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
        if (expected)
            archive_.getRecord(record, storage.data_ptr(), expected);
        storages_[key] = storage;
        v->t = storage;
        return v;
    }

    static std::vector<int64_t> int_tuple(const value &v, const char *what)
    {
        if (v.kind != value::tuple)
            fail(std::string("tensor ") + what + " is not a tuple");
        std::vector<int64_t> out;
        for (auto &item : v.items) {
            if (item->kind != value::integer || item->i < 0)
                fail(std::string("tensor ") + what + " holds a bad value");
            out.push_back(item->i);
        }
        return out;
    }

    value_ptr rebuild_tensor(const value &args)
    {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        if (args.kind != value::tuple || args.items.size() < 4 ||
            args.items[0]->kind != value::storage || args.items[1]->kind != value::integer)
            fail("malformed _rebuild_tensor_v2 arguments");
        const at::Tensor &storage = args.items[0]->t;
        int64_t offset = args.items[1]->i;
        std::vector<int64_t> size = int_tuple(*args.items[2], "size");
        std::vector<int64_t> stride = int_tuple(*args.items[3], "stride");
        if (size.size() != stride.size() || size.size() > 16)
            fail("tensor size and stride disagree");
        /* The last element reached must lie inside the storage. */
        int64_t last = offset, numel = 1;
        for (size_t d = 0; d < size.size(); d++) {
            numel *= size[d];
            if (size[d] > 0)
                last += (size[d] - 1) * stride[d];
        }
        if (offset < 0 || (numel > 0 && last >= storage.numel()))
            fail("tensor reaches past the end of its storage");
        auto v = make(value::tensor);
        v->t = storage.as_strided(size, stride, offset);
        return v;
    }

    value_ptr reduce(const value &fn, const value &args)
    {
        if (fn.kind != value::global)
            fail(std::string("pickle calls a ") + kind_name(fn.kind));
        if (fn.s == "collections.OrderedDict")
            return make(value::dict);
        if (fn.s == "torch._utils._rebuild_tensor_v2")
            return rebuild_tensor(args);
        if (fn.s == "torch.jit._pickle.restore_type_tag") {
            /* libtorch's pickle_save wraps typed containers: (value, "Dict[str, Tensor]") */
            if (args.kind != value::tuple || args.items.empty())
                fail("malformed restore_type_tag arguments");
            return args.items[0];
        }
        if (fn.s == "torch._utils._rebuild_parameter" ||
            fn.s == "torch._utils._rebuild_parameter_with_state") {
            if (args.kind != value::tuple || args.items.empty() ||
                args.items[0]->kind != value::tensor)
                fail("malformed _rebuild_parameter arguments");
            return args.items[0];
        }
        fail("the file holds a pickled " + fn.s +
             ", not a dict of tensors (save model.state_dict() rather than the model)");
    }
};

/* Picks the name -> tensor map out of what the pickle held (looking at most two dicts deep). */
const value *find_tensor_dict(const value &root, int level = 0)
{
    if (level > 2)
        fail("no dict of tensors within the first levels of the file");
    if (root.kind != value::dict)
        fail(std::string("the file holds a ") + kind_name(root.kind) + ", not a dict of tensors");
    bool all_tensors = true;
    for (auto &kv : root.entries)
        all_tensors = all_tensors && kv.second->kind == value::tensor;
    if (all_tensors)
        return &root;
    for (const char *key : {"state_dict", "model_state_dict", "model"})
        for (auto &kv : root.entries)
            if (kv.first->kind == value::string && kv.first->s == key &&
                kv.second->kind == value::dict)
                return find_tensor_dict(*kv.second, level + 1);
    fail("the file holds a dict whose values are not all tensors, and no \"state_dict\" entry");
}

} // namespace

namespace tc {

named_tensors read_torch_save(const std::string &path)
{
    {
        std::ifstream probe(path, std::ios::binary);
        if (!probe)
            fail("cannot open " + path + ": " + std::strerror(errno));
        char magic[4] = {0};
        probe.read(magic, 4);
        if (probe.gcount() < 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0) {
            if ((uint8_t)magic[0] == 0x80)
                fail(path + " is in the legacy torch.save format (torch < 1.6); re-save it with "
                            "a current torch: torch.save(torch.load(f), f)");
            fail(path + " is not a torch.save file (no zip header)");
        }
    }
    caffe2::serialize::PyTorchStreamReader archive(path);
    if (archive.hasRecord("byteorder")) {
        if (archive.getRecordSize("byteorder") > 16)
            fail(path + " has a malformed byteorder record");
        auto [ptr, size] = archive.getRecord("byteorder");
        std::string order((const char *)ptr.get(), size);
        if (order != "little")
            fail(path + " was written on a " + order + "-endian machine; not supported");
    }
    if (!archive.hasRecord("data.pkl"))
        fail(path + " has no data.pkl record: not a torch.save file");
    uint64_t file_size;
    {
        std::ifstream probe(path, std::ios::binary | std::ios::ate);
        file_size = probe ? (uint64_t)probe.tellg() : 0;
    }
    size_t pickle_size = archive.getRecordSize("data.pkl");
    if (pickle_size > max_pickle_bytes || pickle_size > file_size)
        fail(path + ": data.pkl claims " + std::to_string(pickle_size) +
             " bytes, more than the file holds or than a state dict needs (" +
             std::to_string(max_pickle_bytes) + ")");
    auto [ptr, size] = archive.getRecord("data.pkl");
    std::string pickle((const char *)ptr.get(), size);
    unpickler reader(pickle, archive, file_size);
    value_ptr root = reader.run();
    const value *dict = find_tensor_dict(*root);
    named_tensors out;
    for (auto &kv : dict->entries) {
        if (kv.first->kind != value::string)
            fail("a state dict key is a " + std::string(kind_name(kv.first->kind)));
        out.emplace_back(kv.first->s, kv.second->t);
    }
    return out;
}

} // namespace tc
