/*
 * torchc.h - a small C API over libtorch.
 *
 * This is the only door between the project's C code and libtorch. It offers tensors, the
 * per-operation calls the networks in src/models/ are written with, autograd, optimizers,
 * devices and state dicts in the format of Python's torch.save(model.state_dict()).
 * It does not offer modules or networks: those are written in C on top of it.
 *
 * Rules every function follows:
 *   - No C++ exception crosses this API. A failing call returns NULL (for a tensor or handle)
 *     or a negative status, and tc_last_error() gives a readable message. The message is
 *     thread-local and owned by the library; it stays valid until the next failing call on
 *     the same thread.
 *   - Errors are sticky: an operation given a NULL tensor returns NULL and keeps the first
 *     message, so a whole forward pass can be written without checks and checked once.
 *   - Every returned tc_tensor is a new handle. Inside a scope (tc_scope_begin) the scope owns
 *     it and frees it at tc_scope_end unless it was kept (tc_keep) or adopted (tc_own);
 *     outside any scope the caller owns it and frees it with tc_free.
 *   - Handles of different kinds are distinct types: an optimizer cannot be passed where a
 *     tensor is expected.
 *
 * Worked example: one training step, checked once.
 *
 *     tc_scope *s = tc_scope_begin();
 *     tc_tensor *logits = model_forward(m, images, true);                  // [N,C]
 *     tc_tensor *loss = tc_cross_entropy(logits, labels, 0.1);             // []
 *     int rc = tc_backward(loss);
 *     if (rc == 0) rc = tc_optimizer_step(opt);
 *     if (rc < 0) fprintf(stderr, "step failed: %s\n", tc_last_error());
 *     tc_scope_end(s);                                                     // frees all of them
 */
#ifndef TORCHC_H
#define TORCHC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- handles ---------------------------------------------------------------------------- */

typedef struct tc_tensor tc_tensor;         /* one at::Tensor reference */
typedef struct tc_scope tc_scope;           /* owner of the temporaries of one step */
typedef struct tc_optimizer tc_optimizer;   /* SGD, Adam, AdamW or RMSprop over parameter groups */
typedef struct tc_state_dict tc_state_dict; /* ordered name -> tensor map */

/* ---- errors ----------------------------------------------------------------------------- */

enum tc_status {
    TC_OK = 0,
    TC_ERR = -1,      /* libtorch raised an error, or an argument was invalid */
    TC_ERR_NULL = -2, /* a NULL handle was given (usually: an earlier call failed) */
};

/* The message of the last failing call on this thread ("" if none). Owned by the library. */
const char *tc_last_error(void);
void tc_clear_error(void);
/* Records an error from a layer built on torchc (a C network checking its input), so that it
 * joins the same sticky chain: the caller sees it through tc_last_error(). */
void tc_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- types, devices, global settings ---------------------------------------------------- */

enum tc_dtype {
    TC_FLOAT32,
    TC_FLOAT64,
    TC_FLOAT16,
    TC_BFLOAT16,
    TC_INT64,
    TC_INT32,
    TC_UINT8,
    TC_INT8,
    TC_BOOL,
};
const char *tc_dtype_name(enum tc_dtype t);
size_t tc_dtype_size(enum tc_dtype t);

enum tc_device_type { TC_CPU = 0, TC_CUDA = 1 };
typedef struct tc_device {
    enum tc_device_type type;
    int index; /* CUDA ordinal; 0 for CPU */
} tc_device;

tc_device tc_device_cpu(void);
tc_device tc_device_cuda(int index);
int tc_cuda_device_count(void); /* 0 when CUDA is absent or unusable */
int tc_cuda_synchronize(tc_device d);
/* The usable CUDA devices, like tc_cuda_device_count, except that a host with an NVIDIA GPU
 * (a node nvidia0... in dev_dir; NULL: /dev) where CUDA cannot start (no or too old a driver)
 * is TC_ERR with the driver's or CUDA's own error in tc_last_error(), not a silent 0: training
 * 50-100x slower on the CPU is never what such a host was rented for. 0 without an error when
 * CUDA_VISIBLE_DEVICES is "" or "-1" (the CPU chosen on purpose) or libtorch is CPU-only. */
int tc_cuda_devices_checked(const char *dev_dir);
/* Makes CUDA device `index` this thread's current one: the first CUDA call of a worker, so
 * that no context is ever made on another rank's GPU. */
int tc_cuda_set_device(int index);
/* Process-wide CUDA settings for training: cuDNN benchmark mode (picks the fastest
 * convolution algorithms for the shapes it sees) and TF32 for fp32 matrix products and
 * convolutions (Ampere and later). Nothing on the CPU depends on them. */
void tc_cuda_set_performance(bool cudnn_benchmark, bool tf32);

void tc_manual_seed(uint64_t seed);     /* CPU and every CUDA device */
/* The CPU generator's state as a uint8 tensor, and setting it back (checkpoints). */
tc_tensor *tc_rng_state(void);
int tc_rng_set_state(const tc_tensor *state);
void tc_set_num_threads(int n);         /* intra-op threads */
int tc_get_num_threads(void);

/* Live tensor handles in this process: for leak tests. */
int64_t tc_live_tensors(void);

/* ---- asynchronous host-to-device feeding --------------------------------------------------- */

typedef struct tc_stream tc_stream; /* a CUDA side stream; a placeholder on the CPU */
typedef struct tc_event tc_event;   /* a CUDA event; a placeholder on the CPU */

/* A host buffer of `bytes`: page-locked (from PyTorch's caching host allocator) when pinned
 * and CUDA is there, so that copies from it to a GPU run while the host goes on; ordinary
 * memory otherwise (a CPU-only libtorch has no page-locking). NULL with the error when it
 * cannot be had. Freed by tc_host_free, which hands page-locked memory back only after the
 * copies started from it have finished. For train's loader slots and serve's batches. */
void *tc_host_alloc(size_t bytes, bool pinned);
bool tc_host_is_pinned(const void *p); /* p from tc_host_alloc */
void tc_host_free(void *p);
/* A CPU tensor over the caller's memory (contiguous, row-major, of dtype dt), not a copy: the
 * memory must outlive every use of the tensor, autograd's saved inputs included. */
tc_tensor *tc_from_blob(void *data, const int64_t *shape, int ndim, enum tc_dtype dt);
/* A side stream of device d from PyTorch's pool. Free with tc_stream_free. */
tc_stream *tc_stream_new(tc_device d);
void tc_stream_free(tc_stream *s);
/* dst <- src enqueued on stream s (NULL: dst's device's current stream), without the host
 * waiting when src is pinned host memory: src must stay unchanged, and dst unused by other
 * streams, until an event recorded on s after the copy has completed. Synchronous on the CPU. */
int tc_copy_async_(tc_tensor *dst, const tc_tensor *src, tc_stream *s);
/* t on device d; from page-locked memory to a GPU the host does not wait for the copy (work
 * queued after it on the device runs after it); otherwise as tc_to_device. */
tc_tensor *tc_to_device_nonblocking(const tc_tensor *t, tc_device d);
/* Copies n tensors (same dtype, same device) into dsts[i] (dst_bytes[i] each, numel * dtype
 * size) with one wait for the device instead of one per tensor. */
int tc_to_data_many(const tc_tensor *const *ts, size_t n, void *const *dsts,
                    const size_t *dst_bytes);
/* Events of device d. Record marks the point now reached on stream s (NULL: the device's
 * current stream); wait makes stream s wait for it on the device (no host wait); synchronize
 * makes the host wait for it. On the CPU all three do nothing (the work is already done). */
tc_event *tc_event_new(tc_device d);
void tc_event_free(tc_event *e);
int tc_event_record(tc_event *e, tc_stream *s);
int tc_event_wait(tc_event *e, tc_stream *s);
int tc_event_synchronize(tc_event *e);
/* How many times this process's host waited for a CUDA device through torchc: reading a CUDA
 * tensor back (tc_to_data, tc_item_*), synchronising an event not yet reached or a device.
 * 0 on the CPU. For measuring syncs per step. */
int64_t tc_device_waits(void);

/* ---- scopes ----------------------------------------------------------------------------- */

/* Opens a scope on this thread; tensors created until its end belong to it. Scopes nest. */
tc_scope *tc_scope_begin(void);
/* Frees every tensor the scope still owns. Ending an outer scope ends the inner ones too. */
void tc_scope_end(tc_scope *s);
/* Moves t from its scope to the enclosing one (or to the caller when there is none).
 * Returns t; NULL passes through so that it can wrap a result. */
tc_tensor *tc_keep(tc_tensor *t);
/* Takes t out of any scope: the caller owns it and must tc_free it. Returns t. */
tc_tensor *tc_own(tc_tensor *t);
/* Frees a handle (the memory goes when the last reference to the data goes). NULL is fine. */
void tc_free(tc_tensor *t);

/* ---- creating tensors and reading them back ----------------------------------------------- */

tc_tensor *tc_empty(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d);
tc_tensor *tc_zeros(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d);
tc_tensor *tc_ones(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d);
tc_tensor *tc_full(const int64_t *shape, int ndim, double value, enum tc_dtype dt, tc_device d);
tc_tensor *tc_randn(const int64_t *shape, int ndim, enum tc_dtype dt, tc_device d);
tc_tensor *tc_randint(int64_t high, const int64_t *shape, int ndim, tc_device d); /* int64 */
tc_tensor *tc_scalar_tensor(double value, enum tc_dtype dt, tc_device d);
/* Copies `data` (contiguous, row-major, of dtype dt) into a new CPU tensor. */
tc_tensor *tc_from_data(const void *data, const int64_t *shape, int ndim, enum tc_dtype dt);
/* Copies t (any device, any layout) into dst as contiguous values of t's dtype.
 * dst_bytes must equal numel * dtype size. */
int tc_to_data(const tc_tensor *t, void *dst, size_t dst_bytes);
int tc_item_double(const tc_tensor *t, double *out); /* one-element tensors */
int tc_item_int64(const tc_tensor *t, int64_t *out);

int tc_dim(const tc_tensor *t);                      /* -1 for NULL */
int64_t tc_size(const tc_tensor *t, int dim);        /* negative dim counts from the end */
int64_t tc_numel(const tc_tensor *t);
int tc_shape(const tc_tensor *t, int64_t *shape, int max_dims); /* returns ndim */
enum tc_dtype tc_dtype_of(const tc_tensor *t);
tc_device tc_device_of(const tc_tensor *t);
bool tc_same_shape(const tc_tensor *a, const tc_tensor *b);
/* Writes "[64, 3, 7, 7]" into buf. */
const char *tc_shape_str(const tc_tensor *t, char *buf, size_t len);

/* ---- conversions and in-place updates (no autograd) --------------------------------------- */

tc_tensor *tc_to_device(const tc_tensor *t, tc_device d);
tc_tensor *tc_to_dtype(const tc_tensor *t, enum tc_dtype dt);
tc_tensor *tc_clone(const tc_tensor *t);
tc_tensor *tc_detach(const tc_tensor *t);
tc_tensor *tc_contiguous(const tc_tensor *t);
tc_tensor *tc_to_channels_last(const tc_tensor *t); /* 4-d tensors */
/* Images as bytes [N,H,W,C] (uint8, any device) -> float [N,C,H,W] on the same device, each
 * byte v of channel c replaced by table[c * 256 + v] (table: float [C*256] on that device).
 * Channels-last in memory when channels_last, else contiguous. A table lookup rather than
 * arithmetic, so that the values are bit-identical to a host that normalised with the same
 * table (image_normalize_table). */
tc_tensor *tc_pixels_lookup(const tc_tensor *pixels, const tc_tensor *table, bool channels_last);
tc_tensor *tc_reshape(const tc_tensor *t, const int64_t *shape, int ndim);
/* Elements start..start+length-1 along dim, as a view (no copy). */
tc_tensor *tc_narrow(const tc_tensor *t, int dim, int64_t start, int64_t length);
/* Replaces the data behind `t` (keeping the handle and its requires_grad) with a copy on
 * device d, optionally channels-last: how parameters move to a GPU. */
int tc_move_(tc_tensor *t, tc_device d, bool channels_last);
/* dst <- src (shapes must match; dtype and device are converted), outside autograd. */
int tc_copy_(tc_tensor *dst, const tc_tensor *src);
int tc_fill_(tc_tensor *t, double value);
int tc_add_scalar_(tc_tensor *t, double value);
int tc_mul_scalar_(tc_tensor *t, double value);

/* ---- initialisation, as torch.nn.init (in place, outside autograd) ------------------------- */

enum tc_fan_mode { TC_FAN_IN, TC_FAN_OUT };
int tc_init_kaiming_normal_(tc_tensor *t, enum tc_fan_mode mode); /* nonlinearity relu, a=0 */
/* kaiming_uniform_(a): what nn.Linear and nn.Conv2d use by default (a = sqrt(5)). */
int tc_init_kaiming_uniform_(tc_tensor *t, double a);
int tc_init_normal_(tc_tensor *t, double mean, double std);
int tc_init_uniform_(tc_tensor *t, double low, double high);
/* fan_in of a weight as torch.nn.init computes it (in_features * receptive field). */
int64_t tc_fan_in(const tc_tensor *weight);

/* ---- autograd --------------------------------------------------------------------------- */

int tc_set_requires_grad(tc_tensor *t, bool requires_grad);
bool tc_requires_grad(const tc_tensor *t);
/* The gradient of a leaf, or NULL with an error when it has none yet. */
tc_tensor *tc_grad(const tc_tensor *t);
bool tc_has_grad(const tc_tensor *t);
int tc_zero_grad(tc_tensor *t); /* drops the gradient (set_to_none), as zero_grad() does */
int tc_backward(const tc_tensor *loss); /* loss must hold one element */

/* Grad mode for this thread. Returns the previous setting so that it can be restored. */
bool tc_set_grad_enabled(bool enabled);
/* Autocast for this thread (mixed precision on CUDA with bf16/fp16; CPU bf16). */
int tc_autocast_begin(enum tc_device_type dev, enum tc_dtype dt);
int tc_autocast_end(enum tc_device_type dev);

/* ---- operations -------------------------------------------------------------------------
 * Shapes: N batch, C channels, H/W height/width, K classes. Any input may be NULL (sticky). */

/* x [N,Cin,H,W], w [Cout,Cin/groups,kh,kw], b [Cout] or NULL -> [N,Cout,H',W'] */
tc_tensor *tc_conv2d(const tc_tensor *x, const tc_tensor *w, const tc_tensor *b, int64_t stride,
                     int64_t padding, int64_t dilation, int64_t groups);
/* x [N,C,...]; weight/bias/running stats [C]. In training mode the running stats are updated
 * in place with `momentum` (torch's convention: new = (1-m)*old + m*batch). */
tc_tensor *tc_batch_norm(const tc_tensor *x, const tc_tensor *weight, const tc_tensor *bias,
                         tc_tensor *running_mean, tc_tensor *running_var, bool training,
                         double momentum, double eps);
/* Folds an evaluation-mode batch norm into the convolution before it, in place and without
 * autograd: conv_weight *= s (per output channel) and bn_bias becomes the folded bias
 * (conv_bias - mean) * s + bn_bias, where s = bn_weight / sqrt(var + eps) and conv_bias may
 * be NULL (zero). The convolution with weight conv_weight and bias bn_bias then computes what
 * conv followed by batch norm did; the batch norm's tensors are no longer a batch norm. */
int tc_fold_batchnorm_(tc_tensor *conv_weight, const tc_tensor *conv_bias,
                       const tc_tensor *bn_weight, tc_tensor *bn_bias, const tc_tensor *mean,
                       const tc_tensor *var, double eps);
tc_tensor *tc_relu(const tc_tensor *x);
tc_tensor *tc_relu_(tc_tensor *x); /* in place; returns a new handle to x */
tc_tensor *tc_max_pool2d(const tc_tensor *x, int64_t kernel, int64_t stride, int64_t padding,
                         bool ceil_mode);
tc_tensor *tc_avg_pool2d(const tc_tensor *x, int64_t kernel, int64_t stride, int64_t padding);
tc_tensor *tc_adaptive_avg_pool2d(const tc_tensor *x, int64_t out_h, int64_t out_w);
/* x [N,in], w [out,in], b [out] or NULL -> [N,out] */
tc_tensor *tc_linear(const tc_tensor *x, const tc_tensor *w, const tc_tensor *b);
tc_tensor *tc_add(const tc_tensor *a, const tc_tensor *b);
tc_tensor *tc_add_(tc_tensor *a, const tc_tensor *b); /* a += b; returns a new handle to a */
tc_tensor *tc_sub(const tc_tensor *a, const tc_tensor *b);
tc_tensor *tc_mul(const tc_tensor *a, const tc_tensor *b);
tc_tensor *tc_mul_scalar(const tc_tensor *a, double s);
tc_tensor *tc_div_scalar(const tc_tensor *a, double s);
tc_tensor *tc_flatten(const tc_tensor *x, int64_t start_dim); /* [N,...] -> [N, prod(...)] */
tc_tensor *tc_dropout(const tc_tensor *x, double p, bool training);
tc_tensor *tc_softmax(const tc_tensor *x, int64_t dim);
tc_tensor *tc_log_softmax(const tc_tensor *x, int64_t dim);
/* logits [N,K], targets [N] int64 -> mean loss [] (label smoothing in [0,1)) */
tc_tensor *tc_cross_entropy(const tc_tensor *logits, const tc_tensor *targets,
                            double label_smoothing);
/* The same with a weight per class (weights [K] float), as cross_entropy(weight=...): the mean
 * is over the targets' weights. */
tc_tensor *tc_cross_entropy_weighted(const tc_tensor *logits, const tc_tensor *targets,
                                     const tc_tensor *weights, double label_smoothing);
tc_tensor *tc_argmax(const tc_tensor *x, int64_t dim); /* int64 */
/* x [..., D] -> values and indices [..., k] along `dim`, largest first. */
int tc_topk(const tc_tensor *x, int64_t k, int64_t dim, tc_tensor **values, tc_tensor **indices);
tc_tensor *tc_sum(const tc_tensor *x);
tc_tensor *tc_mean(const tc_tensor *x);
tc_tensor *tc_eq(const tc_tensor *a, const tc_tensor *b);
/* ||a-b|| / max(||b||, tiny): the normalised error the parity tests compare with. */
int tc_normalised_error(const tc_tensor *a, const tc_tensor *b, double *out);

/* ---- optimizers ------------------------------------------------------------------------- */

struct tc_sgd_options {
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    bool nesterov;
};
struct tc_adam_options {
    double lr;
    double beta1, beta2;
    double eps;
    double weight_decay;
    bool decoupled_weight_decay; /* true: AdamW */
    bool amsgrad;
};
/* RMSprop: alpha is the decay of the squared-gradient average (the built-in algorithm's gamma). */
struct tc_rmsprop_options {
    double lr;
    double alpha;
    double eps;
    double weight_decay;
    double momentum;
};
struct tc_sgd_options tc_sgd_default_options(void);   /* lr 0.01, everything else 0 */
struct tc_adam_options tc_adam_default_options(void); /* lr 1e-3, betas (0.9,0.999), eps 1e-8 */

/* The tensors are shared with the caller (same data, same gradients); the optimizer takes
 * its own references, so the handles may be freed afterwards. They form parameter group 0. */
tc_optimizer *tc_sgd_new(tc_tensor *const *params, size_t n, const struct tc_sgd_options *o);
tc_optimizer *tc_adam_new(tc_tensor *const *params, size_t n, const struct tc_adam_options *o);
tc_optimizer *tc_rmsprop_new(tc_tensor *const *params, size_t n, const struct tc_rmsprop_options *o);
/* Adds a group with its own learning rate and weight decay; returns its index or < 0. */
int tc_optimizer_add_group(tc_optimizer *opt, tc_tensor *const *params, size_t n, double lr,
                           double weight_decay);
int tc_optimizer_group_count(const tc_optimizer *opt);
/* group < 0: every group. */
int tc_optimizer_set_lr(tc_optimizer *opt, int group, double lr);
double tc_optimizer_get_lr(const tc_optimizer *opt, int group);
int tc_optimizer_zero_grad(tc_optimizer *opt);
int tc_optimizer_step(tc_optimizer *opt);
/* The step as PyTorch's SGD/Adam/AdamW(fused=True): a few fused kernels per parameter group
 * instead of several per parameter (the step is launch-bound on a GPU otherwise). mode -1
 * (default): where the parameters are on CUDA; 0: never; 1: always (the CPU has the kernels
 * too). Same update rule and state, equal results within float rounding. RMSprop and
 * amsgrad keep libtorch's loop. */
int tc_optimizer_set_fused(tc_optimizer *opt, int mode);
/* The optimizer's state (momentum buffers, Adam moments, step counts) for checkpoints, in
 * libtorch's own archive format. Loading needs an optimizer built over the same parameters. */
int tc_optimizer_save(const tc_optimizer *opt, const char *path);
int tc_optimizer_load(tc_optimizer *opt, const char *path);
void tc_optimizer_free(tc_optimizer *opt);

/* ---- state dicts -------------------------------------------------------------------------- */

tc_state_dict *tc_state_dict_new(void);
void tc_state_dict_free(tc_state_dict *sd);
/* Adds or replaces `name`; the entry shares t's data. */
int tc_state_dict_set(tc_state_dict *sd, const char *name, const tc_tensor *t);
size_t tc_state_dict_size(const tc_state_dict *sd);
const char *tc_state_dict_name(const tc_state_dict *sd, size_t i); /* owned by sd */
/* A new handle to entry i or to `name`; NULL (with an error naming the key) if absent. */
tc_tensor *tc_state_dict_at(const tc_state_dict *sd, size_t i);
tc_tensor *tc_state_dict_get(const tc_state_dict *sd, const char *name);
bool tc_state_dict_has(const tc_state_dict *sd, const char *name);

/* Writes the file that Python's torch.load reads as a dict of tensors (zip format, CPU
 * tensors). Writes `path` itself: callers that need atomicity write a temporary and rename. */
int tc_state_dict_save(const tc_state_dict *sd, const char *path);
/* Reads what torch.save(model.state_dict()) writes: an OrderedDict or dict of tensors in the
 * zip format, onto the CPU. A checkpoint dict with a "state_dict" or "model_state_dict"
 * entry is accepted too. Anything else (corrupt zip, other pickled objects) is an error. */
tc_state_dict *tc_state_dict_load(const char *path);


/* ---- data parallelism (DDP's machinery: c10d) ------------------------------------------ */

/* Called, then the process aborts, when a libtorch background thread ends the process with
 * an exception: NCCL's watchdog does so when a collective fails or stalls past the timeout
 * ("Watchdog caught collective operation timeout: WorkNCCL(SeqNum=.., OpType=ALLREDUCE..)").
 * `message` is the exception's text. The handler must only record it (a failure file). */
void tc_set_fatal_handler(void (*handler)(const char *message));

/* A process group: the ranks of one job, met through a TCPStore served by rank 0, talking
 * over Gloo (CPU tensors) or NCCL (CUDA tensors). Every collective below is blocking, is
 * called by every rank in the same order, and fails (never hangs) after `timeout_s`. */
typedef struct tc_dist tc_dist;
/* Averages gradients across the ranks during backward, in buckets (DDP's Reducer). */
typedef struct tc_grad_sync tc_grad_sync;

struct tc_dist_options {
    const char *master_addr; /* rank 0's address (numeric, or a name that resolves) */
    int master_port;         /* rank 0 serves the rendezvous store here */
    int rank, world_size;
    tc_device device;      /* CPU: Gloo; CUDA (the worker's own GPU): NCCL */
    const char *interface; /* network interface for the data traffic ("eth0"), or NULL */
    const char *local_addr; /* without an interface: this host's address for Gloo */
    double timeout_s;      /* the rendezvous and every collective */
};

enum tc_reduce_op { TC_REDUCE_SUM, TC_REDUCE_MAX, TC_REDUCE_MIN };

/* Meets the other ranks; NULL (tc_last_error) if they do not all arrive within the timeout. */
tc_dist *tc_dist_init(const struct tc_dist_options *o);
void tc_dist_free(tc_dist *d);
/* True where this build has NCCL (a CUDA libtorch). */
bool tc_dist_has_nccl(void);
/* Copies root's tensors into every rank's tensors of the same shapes, in place, in a few
 * coalesced messages. */
int tc_dist_broadcast(tc_dist *d, tc_tensor *const *tensors, size_t n, int root);
/* Reduces n host values across the ranks in place (metrics, counts, flags). In a CUDA group
 * they go over a Gloo backend beside NCCL, so this never waits for the GPU's queued work. */
int tc_dist_all_reduce(tc_dist *d, double *values, size_t n, enum tc_reduce_op op);

/* Hooks the parameters' gradient accumulators: from then on each backward pass averages
 * their gradients across the ranks, bucket by bucket as gradients become ready, so that the
 * communication overlaps the rest of the backward pass. `params`: the trainable parameters
 * in model order (frozen ones left out); every rank passes the same list. `names` (may be
 * NULL) label parameters in errors. bucket_bytes: 0 for DDP's 25 MiB. */
tc_grad_sync *tc_grad_sync_new(tc_dist *d, tc_tensor *const *params, const char *const *names,
                               size_t n, size_t bucket_bytes);
/* Call after the forward pass and before tc_backward, on every rank, every step. */
int tc_grad_sync_before_backward(tc_grad_sync *g);
void tc_grad_sync_free(tc_grad_sync *g);

/* ---- profiling (the training report's timers and gradient statistics) --------------------- */
typedef struct tc_timer tc_timer; /* device-side timestamps: CUDA events */
/* out[i] <- ||grad of params[i]||_2 (0 where a parameter has no gradient), in one device
 * round trip. out: [n]. */
int tc_grad_norms(tc_tensor *const *params, size_t n, float *out);
/* `slots` timing events on CUDA device d; NULL with an error on other devices. */
tc_timer *tc_timer_new(tc_device d, size_t slots);
/* Records slot's event on the device's current stream (returns at once). */
int tc_timer_record(tc_timer *t, size_t slot);
/* Milliseconds of device time between two recorded slots; waits for `to` to complete. */
int tc_timer_elapsed_ms(tc_timer *t, size_t from, size_t to, double *ms);
void tc_timer_free(tc_timer *t);
/* The caching allocator's bytes on a CUDA device (all 0 on the CPU). */
int tc_device_memory(tc_device d, double *allocated_bytes, double *peak_bytes,
                     double *reserved_bytes);


#ifdef __cplusplus
}
#endif
#endif /* TORCHC_H */
