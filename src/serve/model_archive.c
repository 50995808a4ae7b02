/*
 * model_archive.c - model.tar.gz unpacked into the model directory (model_archive.h): every
 * entry's name checked before libarchive writes it, and libarchive's own symlink and ".."
 * guards on top, for what a name cannot show.
 */
#include "serve/model_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/opt_ml.h"

/* True when some '/'-separated component of name is exactly "..". */
static bool has_dotdot_component(const char *name)
{
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        p += *p == '/';
    }
    return false;
}

/* An entry that may be written: a plain file or folder whose name stays inside the folder. */
static bool entry_allowed(struct archive_entry *e)
{
    const char *name = archive_entry_pathname(e);
    mode_t type = archive_entry_filetype(e);
    return name && name[0] && name[0] != '/' && !has_dotdot_component(name) &&
           (type == AE_IFREG || type == AE_IFDIR) && !archive_entry_hardlink(e) &&
           !archive_entry_symlink(e);
}

/* Copies the current entry's data from in to out. */
static int copy_data(struct archive *in, struct archive *out, const char *name, const char *tarball)
{
    const void *buf;
    size_t len;
    la_int64_t offset;
    int r;
    while ((r = archive_read_data_block(in, &buf, &len, &offset)) == ARCHIVE_OK)
        if (archive_write_data_block(out, buf, len, offset) != ARCHIVE_OK)
            return err_set("extracting %s from %s: %s", name, tarball, archive_error_string(out));
    if (r != ARCHIVE_EOF)
        return err_set("extracting %s from %s: %s", name, tarball, archive_error_string(in));
    return 0;
}

/* One entry: checked, renamed under dir, written. */
static int extract_entry(struct archive *in, struct archive *out, struct archive_entry *e,
                         const char *tarball, const char *dir)
{
    const char *name = archive_entry_pathname(e);
    if (!entry_allowed(e))
        return err_set("%s holds an entry that would leave the model directory or is not a plain "
                       "file or folder: \"%.200s\"; refused",
                       tarball, name ? name : "");
    char path[4096];
    if (opt_ml_join(path, sizeof path, dir, name) < 0)
        return err_prefix("extracting %s: ", tarball);
    bool is_file = archive_entry_filetype(e) == AE_IFREG;
    char shown[256];
    snprintf(shown, sizeof shown, "%s", name); /* the entry's name is about to change */
    archive_entry_set_pathname(e, path);
    archive_entry_set_perm(e, is_file ? 0644 : 0755);
    if (archive_write_header(out, e) != ARCHIVE_OK)
        return err_set("extracting %s: %s", shown, archive_error_string(out));
    return is_file ? copy_data(in, out, shown, tarball) : 0;
}

int model_archive_extract(const char *tarball, const char *dir)
{
    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    if (!in || !out) {
        archive_read_free(in);
        archive_write_free(out);
        return err_set("out of memory");
    }
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
    /* Names are checked above (and made absolute under dir, so libarchive's own absolute-path
     * check cannot be used); these two guard what the names cannot show. */
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    int rc = 0;
    if (archive_read_open_filename(in, tarball, 1 << 16) != ARCHIVE_OK)
        rc = err_set("cannot read %s: %s", tarball, archive_error_string(in));
    int64_t total = 0;
    int entries = 0;
    struct archive_entry *e;
    while (rc == 0) {
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = err_set("%s is not a valid tar.gz: %s", tarball, archive_error_string(in));
            break;
        }
        int64_t size = archive_entry_size(e);
        total += size > 0 ? size : 0;
        if (++entries > MODEL_ARCHIVE_MAX_ENTRIES || total > MODEL_ARCHIVE_MAX_BYTES) {
            rc = err_set("%s is larger than %d entries or %lld bytes", tarball,
                         MODEL_ARCHIVE_MAX_ENTRIES, (long long)MODEL_ARCHIVE_MAX_BYTES);
            break;
        }
        rc = extract_entry(in, out, e, tarball, dir);
    }
    archive_write_close(out);
    archive_write_free(out);
    archive_read_close(in);
    archive_read_free(in);
    return rc;
}

int model_archive_prepare(const char *dir)
{
    char pth[4096], tarball[4096];
    if (opt_ml_join(pth, sizeof pth, dir, "model.pth") < 0 ||
        opt_ml_join(tarball, sizeof tarball, dir, "model.tar.gz") < 0)
        return -1;
    if (access(pth, F_OK) == 0 || access(tarball, F_OK) != 0)
        return 0;
    log_info("extracting %s", tarball);
    return model_archive_extract(tarball, dir);
}
