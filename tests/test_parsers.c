/*
 * test_parsers.c DIR - unit tests for the parsers that the end-to-end tests reach only through
 * whole jobs: hyperparameters (SDK-style strings, aliases, bad values), NPY and base64 request
 * bodies (through serve_input_fn, the codecs' public entry), .lst manifests, CIFAR binary
 * batches, CIFAR python batches (pickles: valid, truncated at every byte, hostile), the
 * loader's shard assignment, the cluster layout from resourceconfig.json, and the torchvision
 * pipeline read out of a Python handler's source.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/opt_ml.h"
#include "data/cifar_pickle.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "serve/python_transforms.h"
#include "serve/serve.h"
#include "test_util.h"
#include "train/cluster.h"
#include "train/hyperparams.h"

static const char *dir;

/* A 1x1 RGB PNG. */
static const uint8_t tiny_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
    0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
    0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot write %s", path);
    fwrite(data, 1, len, f);
    fclose(f);
}

static char *make_dir(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(path, 0755);
    return path;
}

static void test_hyperparameters(void)
{
    struct hyperparams hp;
    hyperparams_default(&hp);
    CHECK_INT_EQ(hyperparams_set(&hp, "batch_size", "\"256\""), 0); /* the SDK's double encoding */
    CHECK_INT_EQ(hp.batch_size, 256);
    CHECK_INT_EQ(hyperparams_set(&hp, "learning_rate", "0.01"), 0); /* an alias */
    CHECK(hp.lr == 0.01);
    CHECK_INT_EQ(hyperparams_set(&hp, "optimizer", "\"adam\""), 0);
    CHECK_INT_EQ(hp.optimizer, OPTIMIZER_ADAM);
    CHECK(hyperparams_set(&hp, "epochs", "0") < 0);
    CHECK_CONTAINS(err_msg(), "epochs");
    CHECK(hyperparams_set(&hp, "batch_size", "12abc") < 0);
    CHECK_CONTAINS(err_msg(), "12abc");
    CHECK(hyperparams_set(&hp, "lr", "nan") < 0);

    char path[1200];
    snprintf(path, sizeof path, "%s/hyperparameters.json", dir);
    const char *json = "{\"mini_batch_size\": \"\\\"32\\\"\", \"epochs\": \"3\", "
                       "\"sagemaker_program\": \"\\\"train.py\\\"\", \"model\": \"\\\"lenet\\\"\"}";
    write_file(path, json, strlen(json));
    hyperparams_default(&hp);
    CHECK_INT_EQ(hyperparams_load(path, &hp), 0);
    CHECK_INT_EQ(hp.batch_size, 32);
    CHECK_INT_EQ(hp.epochs, 3);
    CHECK(strcmp(hp.model, "lenet") == 0);
    write_file(path, "[1, 2]", 6);
    CHECK(hyperparams_load(path, &hp) < 0);
    write_file(path, "{\"epochs\": ", 11);
    CHECK(hyperparams_load(path, &hp) < 0);
}

static const struct sm_context ctx = {.num_classes = 3, .image_size = 4, .resize_size = 4,
                                      .mean = {0, 0, 0}, .std = {1, 1, 1}};

static int input(const char *type, const void *body, size_t len, struct sm_batch *b,
                 struct sm_error *err)
{
    struct sm_request req = {body, len, type, "application/json", ""};
    memset(b, 0, sizeof *b);
    memset(err, 0, sizeof *err);
    return serve_input_fn(&ctx, &req, b, err);
}

static void batch_free(struct sm_batch *b)
{
    free(b->data);
    free(b->records);
}

/* An NPY v1.0 file: header dict padded to 128 bytes, then data. */
static size_t npy(uint8_t *out, const char *descr, const char *shape, const void *data, size_t n)
{
    char dict[128];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, shape);
    size_t header = 128 - 10;
    REQUIRE(len > 0 && (size_t)len < header, "npy header too long");
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)header;
    out[9] = 0;
    memset(out + 10, ' ', header);
    memcpy(out + 10, dict, (size_t)len);
    out[10 + header - 1] = '\n';
    memcpy(out + 128, data, n);
    return 128 + n;
}

static void test_npy_and_base64(void)
{
    struct sm_batch b;
    struct sm_error err;
    float pixels[3 * 4 * 4];
    for (int i = 0; i < 48; i++)
        pixels[i] = (float)i / 48.0f;
    uint8_t body[1024];
    size_t len = npy(body, "<f4", "(1, 3, 4, 4)", pixels, sizeof pixels);
    CHECK_INT_EQ(input("application/x-npy", body, len, &b, &err), 0);
    CHECK_INT_EQ((int)b.n, 1);
    /* 0..1 floats are taken as ToTensor output: back to 8-bit pixels, then /255 (mean 0, std 1) */
    CHECK(b.data && fabsf(b.data[5] - pixels[5]) < 1.0f / 255);
    batch_free(&b);

    len = npy(body, "<f4", "(1, 3, 4, 4)", pixels, sizeof pixels - 4); /* one value short */
    CHECK(input("application/x-npy", body, len, &b, &err) >= 400);
    CHECK(err.message[0]);
    batch_free(&b);
    len = npy(body, "<c8", "(1, 3, 4, 4)", pixels, sizeof pixels);
    CHECK(input("application/x-npy", body, len, &b, &err) >= 400);
    batch_free(&b);
    CHECK(input("application/x-npy", "\x93NUMPY", 6, &b, &err) >= 400);
    batch_free(&b);

    /* base64: the PNG above, as {"instances": [{"b64": ...}]} and as a bare string. */
    static const char b64[] = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
    char json[512];
    int n = snprintf(json, sizeof json, "{\"instances\": [{\"b64\": \"%s\"}, \"%s\"]}", b64, b64);
    CHECK_INT_EQ(input("application/json", json, (size_t)n, &b, &err), 0);
    CHECK_INT_EQ((int)b.n, 2);
    batch_free(&b);
    n = snprintf(json, sizeof json, "{\"instances\": [{\"b64\": \"iVBOR$$w0K\"}]}");
    CHECK(input("application/json", json, (size_t)n, &b, &err) == 400);
    CHECK_CONTAINS(err.message, "base64");
    batch_free(&b);
}

static void test_lst(void)
{
    char *ch = make_dir("lst");
    char path[1200];
    snprintf(path, sizeof path, "%s/a.png", ch);
    write_file(path, tiny_png, sizeof tiny_png);
    snprintf(path, sizeof path, "%s/b.png", ch);
    write_file(path, tiny_png, sizeof tiny_png);
    snprintf(path, sizeof path, "%s/train.lst", ch);
    const char *good = "0\t1\ta.png\n1\t0.000000\tb.png\n2\t2\ta.png\n";
    write_file(path, good, strlen(good));
    struct dataset d;
    CHECK_INT_EQ(dataset_open(ch, NULL, NULL, 0, &d), 0);
    CHECK_INT_EQ((int)d.count, 3);
    if (d.count == 3) {
        CHECK_INT_EQ(d.items[0].label, 1);
        CHECK_INT_EQ(d.items[1].label, 0);
        CHECK_INT_EQ(d.items[2].label, 2);
    }
    dataset_free(&d);
    const char *bad[] = {"0\tx\ta.png\n", "0\t1\t../a.png\n", "just one field\n"};
    const char *want[] = {"is not a class index", "must stay inside the channel", "expected"};
    for (int i = 0; i < 3; i++) {
        write_file(path, bad[i], strlen(bad[i]));
        CHECK(dataset_open(ch, NULL, NULL, 0, &d) < 0);
        CHECK_CONTAINS(err_msg(), want[i]);
    }
    unlink(path);
}

static void test_cifar(void)
{
    char *ch = make_dir("cifar");
    char path[1200];
    snprintf(path, sizeof path, "%s/data_batch_1.bin", ch);
    uint8_t records[3 * 3073];
    memset(records, 7, sizeof records);
    records[0] = 3;
    records[3073] = 9;
    records[2 * 3073] = 0;
    write_file(path, records, sizeof records);
    struct dataset d;
    CHECK_INT_EQ(dataset_open(ch, NULL, NULL, 0, &d), 0);
    CHECK_INT_EQ((int)d.count, 3);
    CHECK_INT_EQ(d.num_classes, 10);
    if (d.count == 3)
        CHECK_INT_EQ(d.items[1].label, 9);
    dataset_free(&d);
    records[3073] = 200;
    write_file(path, records, sizeof records);
    CHECK(dataset_open(ch, NULL, NULL, 0, &d) < 0);
    CHECK_CONTAINS(err_msg(), "has label 200");
    write_file(path, records, sizeof records - 1);
    CHECK(dataset_open(ch, NULL, NULL, 0, &d) < 0);
    CHECK_CONTAINS(err_msg(), "not a CIFAR binary batch");
}

static void test_shards(void)
{
    struct loader_config c = {.batch_size = 4, .train = true, .world_size = 3};
    size_t total = 0;
    for (c.rank = 0; c.rank < 3; c.rank++)
        CHECK_INT_EQ((int)loader_batch_count(10, &c), 1); /* padded to 4 each; 4 = 1 batch */
    c.train = false; /* evaluation: 4, 3, 3 samples, nothing padded */
    for (c.rank = 0; c.rank < 3; c.rank++)
        total += loader_batch_count(10, &c);
    CHECK_INT_EQ((int)total, 3);
    c.train = true;
    c.world_size = 1;
    c.rank = 0;
    CHECK_INT_EQ((int)loader_batch_count(9, &c), 2); /* a last batch of one image is dropped */
    CHECK_INT_EQ((int)loader_batch_count(10, &c), 3);
}

static void test_cluster(void)
{
    char *cfg = make_dir("config");
    char path[1200];
    snprintf(path, sizeof path, "%s/resourceconfig.json", cfg);
    struct cluster c;
    unlink(path);
    CHECK_INT_EQ(cluster_read(cfg, &c), 0); /* no file: a local run */
    CHECK_INT_EQ(c.host_count, 1);
    CHECK(strcmp(c.current_host, "algo-1") == 0);
    const char *two = "{\"current_host\": \"algo-2\", \"hosts\": [\"algo-3\", \"algo-2\", \"algo-1\"], "
                      "\"network_interface_name\": \"eth0\"}";
    write_file(path, two, strlen(two));
    CHECK_INT_EQ(cluster_read(cfg, &c), 0);
    CHECK_INT_EQ(c.host_count, 3);
    CHECK_INT_EQ(c.host_index, 1);
    CHECK(strcmp(c.hosts[0], "algo-1") == 0 && strcmp(c.hosts[2], "algo-3") == 0);
    CHECK(strcmp(c.interface, "eth0") == 0);
    const char *bad[] = {"{\"current_host\": \"algo-9\", \"hosts\": [\"algo-1\"]}",
                         "{\"hosts\": \"algo-1\"}", "not json"};
    for (int i = 0; i < 3; i++) {
        write_file(path, bad[i], strlen(bad[i]));
        CHECK(cluster_read(cfg, &c) < 0);
    }
}

/* Appends n bytes to a growing pickle. */
static void put(uint8_t *buf, size_t *len, const void *bytes, size_t n)
{
    memcpy(buf + *len, bytes, n);
    *len += n;
}

/* A CIFAR-10 python batch of 2 records as Python 2 pickled it (the real files' opcodes). */
static size_t cifar_python_batch(uint8_t *buf, const uint8_t pixels[2 * 3072])
{
    size_t n = 0;
    static const char head[] = "\x80\x02}q\x01(U\x04" "data"
                               "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                               "K\x00\x85U\x01\x62\x87R(K\x01K\x02M\x00\x0c\x86"
                               "cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNN"
                               "J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T";
    put(buf, &n, head, sizeof head - 1);
    uint8_t size[4] = {0x00, 0x18, 0, 0}; /* 6144 */
    put(buf, &n, size, 4);
    put(buf, &n, pixels, 2 * 3072);
    static const char tail[] = "tbU\x06labels](K\x03K\teU\x0b\x62\x61tch_labelU\x01x"
                               "u.";
    put(buf, &n, tail, sizeof tail - 1);
    return n;
}

static void test_cifar_pickle(void)
{
    static uint8_t buf[7000], pixels[2 * 3072];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 7);
    size_t len = cifar_python_batch(buf, pixels);
    struct cifar_pickle_batch b;
    int rc = cifar_pickle_batch(buf, len, "labels", &b);
    CHECK_INT_EQ(rc, 0);
    if (rc == 0) {
        CHECK_INT_EQ((int)b.records, 2);
        CHECK_INT_EQ(b.labels[0], 3);
        CHECK_INT_EQ(b.labels[1], 9);
        CHECK(memcmp(b.pixels, pixels, sizeof pixels) == 0);
        cifar_pickle_batch_free(&b);
    } else {
        fprintf(stderr, "%s\n", err_msg());
    }
    CHECK(cifar_pickle_batch(buf, len, "fine_labels", &b) < 0);
    CHECK_CONTAINS(err_msg(), "no \"fine_labels\"");
    /* Cut anywhere: an error, never a crash or a read past the end (ASan watches). */
    int failures = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut + 1);
        memcpy(copy, buf, cut);
        if (cifar_pickle_batch(copy, cut, "labels", &b) == 0) {
            failures++;
            cifar_pickle_batch_free(&b);
        }
        free(copy);
    }
    CHECK_INT_EQ(failures, 0);
    /* Hostile: marks nested without end, a length past the end, a memo never stored, a
     * label list one short of the records. */
    uint8_t deep[200] = {0x80, 0x02};
    memset(deep + 2, '(', sizeof deep - 2);
    CHECK(cifar_pickle_batch(deep, sizeof deep, "labels", &b) < 0);
    CHECK_CONTAINS(err_msg(), "deeper than");
    static const uint8_t huge[] = {0x80, 0x02, 'T', 0xff, 0xff, 0xff, 0x7f, 'x', '.'};
    CHECK(cifar_pickle_batch(huge, sizeof huge, "labels", &b) < 0);
    CHECK_CONTAINS(err_msg(), "ends inside");
    static const uint8_t memo[] = {0x80, 0x02, 'h', 0x05, '.'};
    CHECK(cifar_pickle_batch(memo, sizeof memo, "labels", &b) < 0);
    CHECK_CONTAINS(err_msg(), "never stored");
    uint8_t *p = memmem(buf, len, "K\x03K\t", 4);
    REQUIRE(p, "the labels are in the batch");
    p[2] = 'N', p[3] = 'N'; /* labels 3, None, None: a list of 3 */
    CHECK(cifar_pickle_batch(buf, len, "labels", &b) < 0);
    CHECK_CONTAINS(err_msg(), "not a list of 2 labels");
}

static int find_transforms(const char *src, struct py_transforms *t, char *why, size_t len)
{
    return py_transforms_find(src, strlen(src), t, why, len);
}

static void test_python_transforms(void)
{
    struct py_transforms t;
    char why[256];
    /* The binimages seed's predict_fn, inside its inference.py. */
    const char *binimages =
        "import torchvision.transforms as transforms\n"
        "def predict_fn(input_object, model):\n"
        "    logger.info('In predict fn')  # transforms.Compose([Nothing()]) in a comment\n"
        "    transform = transforms.Compose([\n"
        "        transforms.Resize((224, 224)),\n"
        "        transforms.ToTensor(),\n"
        "        transforms.Normalize(mean=(0,0,0), std=(1,1,1))\n"
        "    ])\n";
    CHECK(find_transforms(binimages, &t, why, sizeof why) == 1);
    CHECK(t.resize_h == 224 && t.resize == 0 && t.crop == 0 && !t.pixels_0_255);
    CHECK(t.mean[1] == 0 && t.std[2] == 1);
    /* A training pipeline beside the inference one (the dog-breed scripts' style), a docstring
     * quoting another, positional lists, a keyword size and a trailing comma. */
    const char *two =
        "'''Example: T.Compose([T.Grayscale()])'''\n"
        "train_tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor()])\n"
        "test_tf = T.Compose(\n  [T.Resize(256), T.CenterCrop(size=224), T.ToTensor(),\n"
        "   T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),])\n"
        "again = torchvision.transforms.Compose([torchvision.transforms.Resize(256), "
        "torchvision.transforms.CenterCrop((224, 224)), torchvision.transforms.ToTensor(), "
        "torchvision.transforms.Normalize(mean=[0.485, 0.456, 0.406], std=(0.229, 0.224, 0.225))])\n";
    CHECK(find_transforms(two, &t, why, sizeof why) == 1);
    CHECK(t.resize == 256 && t.crop == 224);
    CHECK(fabsf(t.mean[2] - 0.406f) < 1e-6f && fabsf(t.std[0] - 0.229f) < 1e-6f);
    CHECK(find_transforms("tf = transforms.Compose([transforms.ToTensor(), "
                          "transforms.Normalize((0.5,), (0.5,))])",
                          &t, why, sizeof why) == 1);
    CHECK(t.resize == 0 && t.resize_h == 0 && t.mean[0] == 0.5f && t.mean[2] == 0.5f && t.std[1] == 0.5f);
    CHECK(find_transforms("t = Compose([PILToTensor(), Normalize(127.5, 127.5)])", &t, why, sizeof why) == 1);
    CHECK(t.pixels_0_255 && t.mean[0] == 127.5f);
    CHECK(find_transforms("t = Compose([PILToTensor(), ConvertImageDtype(torch.float)])", &t, why,
                          sizeof why) == 1);
    CHECK(!t.pixels_0_255 && t.mean[0] == 0 && t.std[0] == 1);

    /* Not understood, each with its reason. */
    CHECK(find_transforms("x = 1\n", &t, why, sizeof why) == 0);
    CHECK(strstr(why, "no transforms.Compose") != NULL);
    CHECK(find_transforms("a = T.Compose([T.RandomCrop(32), T.ToTensor()])", &t, why, sizeof why) == 0);
    CHECK(strstr(why, "only training pipelines") != NULL);
    /* An augmentation before the random step still makes it a training pipeline, and the
     * inference one beside it is found. */
    CHECK(find_transforms("a = T.Compose([T.Resize(256), T.ColorJitter(.4), T.RandomCrop(224), T.ToTensor()])\n"
                          "b = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])",
                          &t, why, sizeof why) == 1);
    CHECK(t.resize == 256 && t.crop == 224);
    CHECK(find_transforms("a = T.Compose([T.TrivialAugmentWide(), T.ToTensor()])", &t, why, sizeof why) == 0);
    /* Steps that would compose, not overwrite: refused. */
    CHECK(find_transforms("a = T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5), T.Normalize(0.1, 0.2)])",
                          &t, why, sizeof why) == 0);
    CHECK(find_transforms("a = T.Compose([T.Resize((224, 224)), T.Resize(256), T.ToTensor()])", &t, why,
                          sizeof why) == 0);
    CHECK(find_transforms("a = T.Compose([T.Resize(256, max_size=300), T.ToTensor()])", &t, why,
                          sizeof why) == 0);
    CHECK(find_transforms("a = T.Compose([T.Resize(256, max_size=None), T.ToTensor()])", &t, why,
                          sizeof why) == 1);
    CHECK(find_transforms("a = T.Compose([T.Grayscale(3), T.ToTensor()])", &t, why, sizeof why) == 0);
    CHECK(strstr(why, "T.Grayscale(...)") != NULL);
    CHECK(find_transforms("a = T.Compose(steps)", &t, why, sizeof why) == 0);
    CHECK(strstr(why, "a variable") != NULL);
    CHECK(find_transforms("a = T.Compose([T.Resize(size), T.ToTensor()])", &t, why, sizeof why) == 0);
    CHECK(find_transforms("a = T.Compose([T.Resize((224, 200)), T.ToTensor()])", &t, why, sizeof why) == 0);
    CHECK(find_transforms("a = T.Compose([T.Resize(256), T.CenterCrop(224)])", &t, why, sizeof why) == 0);
    CHECK(strstr(why, "without ToTensor") != NULL);
    CHECK(find_transforms("a = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0,))])", &t, why, sizeof why) == 0);
    CHECK(find_transforms("a = T.Compose([T.Resize(256), T.ToTensor()])\n"
                          "b = T.Compose([T.Resize(224), T.ToTensor()])",
                          &t, why, sizeof why) == 0);
    CHECK(strstr(why, "two different") != NULL);
    /* Hostile text: unbalanced brackets, an unterminated string, every prefix of a file. */
    CHECK(find_transforms("T.Compose([T.Resize(256), T.ToTensor(", &t, why, sizeof why) == 0);
    CHECK(find_transforms("T.Compose([ \"\"\"", &t, why, sizeof why) == 0);
    for (size_t cut = 0; cut < strlen(two); cut++)
        (void)py_transforms_find(two, cut, &t, why, sizeof why);
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: %s DIR", argv[0]);
    dir = argv[1];
    REQUIRE(opt_ml_mkdirs(dir) == 0, "%s", err_msg());
    test_hyperparameters();
    test_npy_and_base64();
    test_lst();
    test_cifar();
    test_cifar_pickle();
    test_shards();
    test_cluster();
    test_python_transforms();
    return test_finish("parsers");
}
