/* Replay driver for libFuzzer targets: calls LLVMFuzzerTestOneInput once for every regular file
 * in the directory argv[1] (a committed corpus), so `make test` re-runs every input under the
 * normal compiler (and under GS_SANITIZE). A target reports a failure by aborting. Linked with
 * exactly one target source. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into a malloc'd buffer; returns NULL on error. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;

    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)len + 1); /* +1: never malloc(0) */
    if (!buf)
        abort();
    if (fread(buf, 1, (size_t)len, fp) != (size_t)len)
        goto fail;
    fclose(fp);
    *n = (size_t)len;
    return buf;
fail:
    free(buf);
    fclose(fp);
    return NULL;
}

int main(int argc, char **argv)
{
    struct dirent *e;
    DIR *dir;
    int count = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    dir = opendir(argv[1]);
    if (!dir) {
        perror(argv[1]);
        return 1;
    }
    while ((e = readdir(dir)) != NULL) {
        char path[4096];
        struct stat st;
        uint8_t *data;
        size_t n;

        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name) >= (int)sizeof path)
            continue;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        data = slurp(path, &n);
        if (!data) {
            perror(path);
            closedir(dir);
            return 1;
        }
        LLVMFuzzerTestOneInput(data, n);
        free(data);
        count++;
    }
    closedir(dir);
    printf("replayed %d inputs from %s\n", count, argv[1]);
    return count > 0 ? 0 : 1;
}
