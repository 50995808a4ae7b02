/*
 * fuzz_model_archive.c - libFuzzer target: model.tar.gz extraction (model_archive_extract), the
 * input written as the archive and unpacked into a fresh folder, which is then checked to
 * hold only plain files and folders and removed; nothing may appear beside it.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "serve/model_archive.h"

/* Every extracted thing must be a plain file or folder; remove it afterwards. */
static int check_and_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_SL || (flag == FTW_F && !S_ISREG(st->st_mode)))
        abort(); /* a link, device or fifo was written */
    return remove(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char tarball[1024], dir[1024];
    snprintf(tarball, sizeof tarball, "%s/model.tar.gz", fuzz_scratch());
    snprintf(dir, sizeof dir, "%s/model", fuzz_scratch());
    fuzz_write(tarball, data, len);
    if (mkdir(dir, 0755) != 0)
        abort();
    (void)model_archive_extract(tarball, dir);
    if (nftw(dir, check_and_remove, 16, FTW_DEPTH | FTW_PHYS) != 0)
        abort();
    /* Nothing may have landed beside the model folder: the scratch folder holds the archive. */
    DIR *scratch = opendir(fuzz_scratch());
    if (!scratch)
        abort();
    for (struct dirent *e; (e = readdir(scratch));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "model.tar.gz"))
            abort();
    closedir(scratch);
    return 0;
}
