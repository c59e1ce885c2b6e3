/* FFTW plan cache and wisdom. FFTW's planner is not thread-safe; execution with the new-array
 * interface is. Plans are made once per window length and kept for the life of the process. */
#include "dsp/internal.h"

#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PLANS 128 /* window sizes: a few dozen are possible (rates x 50/60 Hz) */

void *dsp__malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

void *dsp__calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int n;
    fftw_plan plan;
} plans[MAX_PLANS];
static int nplans;

int dsp_global_init(const char *wisdom_path)
{
    pthread_mutex_lock(&plan_lock);
    if (wisdom_path) {
        /* A missing or unreadable file only means planning starts from scratch. */
        FILE *f = fopen(wisdom_path, "r");
        if (f) {
            fftw_import_wisdom_from_file(f);
            fclose(f);
        }
    }
    pthread_mutex_unlock(&plan_lock);
    return 0;
}

int dsp_global_save_wisdom(const char *wisdom_path)
{
    char tmp[4096];
    int rc = 0;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", wisdom_path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&plan_lock);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = -errno;
        goto fail;
    }
    fftw_export_wisdom_to_file(f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = -errno;
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0 || rename(tmp, wisdom_path) != 0) {
        rc = -errno;
        goto fail;
    }
    pthread_mutex_unlock(&plan_lock);
    return 0;
fail:
    unlink(tmp);
    pthread_mutex_unlock(&plan_lock);
    return rc;
}

fftw_plan dsp__plan_r2c(int n, int *owned)
{
    fftw_plan p = NULL;
    *owned = 0;
    pthread_mutex_lock(&plan_lock);
    for (int i = 0; i < nplans; i++)
        if (plans[i].n == n) {
            p = plans[i].plan;
            goto done;
        }
    double *in = fftw_alloc_real((size_t)n);
    fftw_complex *out = fftw_alloc_complex((size_t)n / 2 + 1);
    /* MEASURE takes milliseconds for our sizes and is remembered in the wisdom file. Buffers
     * from fftw_malloc share the alignment the plan assumes, as the new-array execute needs. */
    p = fftw_plan_dft_r2c_1d(n, in, out, FFTW_MEASURE);
    fftw_free(in);
    fftw_free(out);
    if (p && nplans < MAX_PLANS) {
        plans[nplans].n = n;
        plans[nplans].plan = p;
        nplans++;
    } else if (p) {
        *owned = 1; /* cache full: the stream destroys it (dsp__plan_release) */
    }
done:
    pthread_mutex_unlock(&plan_lock);
    return p;
}

void dsp__plan_release(fftw_plan p)
{
    pthread_mutex_lock(&plan_lock); /* the planner's data structures are not thread-safe */
    fftw_destroy_plan(p);
    pthread_mutex_unlock(&plan_lock);
}
