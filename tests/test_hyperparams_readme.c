/*
 * test_hyperparams_readme.c - README.md's hyperparameter table lists every name and alias the
 * parser's table (src/train/hyperparams.c) accepts, each as `name` in the "### Hyperparameters"
 * section, so that a user finds every spelling `train` reads. Fails naming each one missing.
 *
 * Usage: test_hyperparams_readme README.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "test_util.h"
#include "train/hyperparams.h"

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: %s README.md", argv[0]);
    char *text;
    size_t len;
    REQUIRE(fileio_read_all(argv[1], 1 << 22, &text, &len) == 0, "cannot read %s", argv[1]);
    char *section = strstr(text, "\n### Hyperparameters\n");
    REQUIRE(section, "%s has no \"### Hyperparameters\" section", argv[1]);
    char *end = strstr(section + 1, "\n### ");
    if (end)
        *end = '\0';
    size_t names = 0;
    for (size_t i = 0; hyperparams_key_name(i, 0); i++) {
        for (size_t a = 0; hyperparams_key_name(i, a); a++) {
            char quoted[160];
            snprintf(quoted, sizeof quoted, "`%s`", hyperparams_key_name(i, a));
            if (!strstr(section, quoted)) {
                fprintf(stderr, "README.md's hyperparameter table lacks %s (%s of %s)\n", quoted,
                        a ? "an alias" : "the key", hyperparams_key_name(i, 0));
                test_failures++;
            }
            names++;
        }
    }
    CHECK(names > 60); /* the table was read at all */
    free(text);
    printf("%zu names and aliases checked\n", names);
    return test_failures ? 1 : 0;
}
