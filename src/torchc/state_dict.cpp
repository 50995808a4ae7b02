/*
 * state_dict.cpp - ordered name -> tensor maps, saved in the zip format that Python's
 * torch.load reads and loaded from what Python's torch.save(model.state_dict()) writes.
 */
#include <unordered_map>

#include "internal.h"
#include "torch_save.h"

using tc::guard_status;

struct tc_state_dict {
    tc::named_tensors items;
    std::unordered_map<std::string, size_t> index;
};

extern "C" tc_state_dict *tc_state_dict_new(void)
{
    auto *sd = new (std::nothrow) tc_state_dict;
    if (!sd)
        tc::set_error(__func__, "out of memory");
    return sd;
}

extern "C" void tc_state_dict_free(tc_state_dict *sd)
{
    delete sd;
}

extern "C" int tc_state_dict_set(tc_state_dict *sd, const char *name, const tc_tensor *t)
{
    TC_NEED_STATUS(sd);
    TC_NEED_STATUS(name);
    TC_NEED_STATUS(t);
    return guard_status(__func__, [&] {
        auto it = sd->index.find(name);
        if (it != sd->index.end()) {
            sd->items[it->second].second = t->t;
        } else {
            sd->index.emplace(name, sd->items.size());
            sd->items.emplace_back(name, t->t);
        }
    });
}

extern "C" size_t tc_state_dict_size(const tc_state_dict *sd)
{
    return sd ? sd->items.size() : 0;
}

extern "C" const char *tc_state_dict_name(const tc_state_dict *sd, size_t i)
{
    return sd && i < sd->items.size() ? sd->items[i].first.c_str() : nullptr;
}

extern "C" tc_tensor *tc_state_dict_at(const tc_state_dict *sd, size_t i)
{
    TC_NEED_TENSOR(sd);
    if (i >= sd->items.size()) {
        tc::set_error(__func__, "index " + std::to_string(i) + " out of range (" +
                                    std::to_string(sd->items.size()) + " entries)");
        return nullptr;
    }
    return tc::wrap(sd->items[i].second);
}

extern "C" tc_tensor *tc_state_dict_get(const tc_state_dict *sd, const char *name)
{
    TC_NEED_TENSOR(sd);
    TC_NEED_TENSOR(name);
    auto it = sd->index.find(name);
    if (it == sd->index.end()) {
        tc::set_error(__func__, std::string("no entry \"") + name + "\" in the state dict");
        return nullptr;
    }
    return tc::wrap(sd->items[it->second].second);
}

extern "C" bool tc_state_dict_has(const tc_state_dict *sd, const char *name)
{
    return sd && name && sd->index.count(name);
}

extern "C" int tc_state_dict_save(const tc_state_dict *sd, const char *path)
{
    TC_NEED_STATUS(sd);
    TC_NEED_STATUS(path);
    return guard_status(__func__, [&] { tc::write_torch_save(path, sd->items); });
}

extern "C" tc_state_dict *tc_state_dict_load(const char *path)
{
    TC_NEED_TENSOR(path);
    tc_state_dict *sd = nullptr;
    guard_status(__func__, [&] {
        tc::named_tensors items = tc::read_torch_save(path);
        auto out = std::make_unique<tc_state_dict>();
        for (auto &kv : items) {
            if (!out->index.emplace(kv.first, out->items.size()).second)
                throw std::runtime_error("duplicate key \"" + kv.first + "\"");
            out->items.push_back(std::move(kv));
        }
        sd = out.release();
    });
    return sd;
}
