/* Streaming .dat writer: one sample record at a time, for records too long to hold in memory
 * (src/export). Layout as encode_dat in dat.c (C37.111-1999 clause 7 / -2013 clause 8): binary
 * records are a uint32 sample number, a uint32 timestamp and the analog values (int16 BINARY,
 * int32 BINARY32, IEEE 754 float32 FLOAT32), little-endian; ASCII records are
 * "n,timestamp,x1,...,xN" with CRLF. */
#include "comtrade/comtrade.h"

#include "core/err.h"

#include <math.h>
#include <string.h>

#define MISSING16    0x8000u     /* binary missing value (1999 clause 7.3, 2013 8.4.2) */
#define MISSING32    0x80000000u /* BINARY32 missing value (2013 8.4.2) */
#define MISSING_TS   0xFFFFFFFFu /* binary timestamp not available (2013 clause 8.4.2) */
#define MAX_ASCII_10 9999999999LL /* ASCII sample numbers / timestamps: 10 digits */

size_t comtrade_dat_record_bytes(const comtrade_cfg_t *cfg)
{
    if (cfg->ft == COMTRADE_ASCII)
        return 0;
    size_t w = cfg->ft == COMTRADE_BINARY ? 2 : 4;
    return 8 + cfg->nanalog * w + (cfg->ndigital + 15) / 16 * 2;
}

/* Decimal text of v at p (no NUL); returns its length (at most 20). */
static size_t put_int(char *p, int64_t v)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char tmp[24];
    size_t k = 0, len = 0;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        p[len++] = '-';
    while (k)
        p[len++] = tmp[--k];
    return len;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int comtrade_dat_put(const comtrade_cfg_t *cfg, buf_t *dat, uint64_t n, int64_t ts,
                     const int64_t *x, const float *xf)
{
    if (cfg->ndigital != 0 || n == 0)
        return GS_EINVAL;
    if (cfg->ft == COMTRADE_ASCII) {
        int old = cfg->rev_year <= 1999;
        if (n > (uint64_t)MAX_ASCII_10 || ts > MAX_ASCII_10)
            return GS_EINVAL;
        if (cfg->nanalog > COMTRADE_MAX_CHANNELS)
            return GS_EINVAL;
        /* the whole line in a local buffer, numbers without printf: the hot loop of an ASCII
         * export (n and ts: 10 digits at most; values: 20 digits and a sign at most) */
        char line[24 + 24 + 22 * 64 + 2];
        size_t len = put_int(line, (int64_t)n);
        line[len++] = ',';
        if (ts >= 0)
            len += put_int(line + len, ts);
        for (size_t ch = 0; ch < cfg->nanalog; ch++) {
            if (len + 24 > sizeof line) {
                buf_append(dat, line, len);
                len = 0;
            }
            line[len++] = ',';
            if (x[ch] == COMTRADE_X_MISSING) {
                if (old) {
                    memcpy(line + len, "99999", 5);
                    len += 5;
                }
                continue;
            }
            if (old && (x[ch] < -99999 || x[ch] > 99998))
                return GS_EINVAL;
            len += put_int(line + len, x[ch]);
        }
        line[len++] = '\r';
        line[len++] = '\n';
        buf_append(dat, line, len);
        return 0;
    }
    if (n > UINT32_MAX || ts >= (int64_t)MISSING_TS)
        return GS_EINVAL;
    uint8_t rec[8 + 4 * COMTRADE_MAX_CHANNELS];
    size_t w = cfg->ft == COMTRADE_BINARY ? 2 : 4;
    if (cfg->nanalog > COMTRADE_MAX_CHANNELS)
        return GS_EINVAL;
    put_u32(rec, (uint32_t)n);
    put_u32(rec + 4, ts >= 0 ? (uint32_t)ts : MISSING_TS);
    uint8_t *p = rec + 8;
    for (size_t ch = 0; ch < cfg->nanalog; ch++, p += w) {
        if (cfg->ft == COMTRADE_FLOAT32) {
            uint32_t u;
            memcpy(&u, &xf[ch], sizeof u);
            put_u32(p, u);
        } else if (cfg->ft == COMTRADE_BINARY) {
            if (x[ch] == COMTRADE_X_MISSING) {
                put_u16(p, (uint16_t)MISSING16);
            } else {
                if (x[ch] < -32767 || x[ch] > 32767)
                    return GS_EINVAL;
                put_u16(p, (uint16_t)(int16_t)x[ch]);
            }
        } else {
            if (x[ch] == COMTRADE_X_MISSING) {
                put_u32(p, MISSING32);
            } else {
                if (x[ch] < -2147483647LL || x[ch] > 2147483647LL)
                    return GS_EINVAL;
                put_u32(p, (uint32_t)(int32_t)x[ch]);
            }
        }
    }
    buf_append(dat, rec, (size_t)(p - rec));
    return 0;
}

void comtrade_cff_section(buf_t *out, const char *name, comtrade_ft_t ft, uint64_t dat_bytes)
{
    if (strcmp(name, "DAT") != 0)
        buf_printf(out, "--- file type: %s ---\r\n", name);
    else if (ft == COMTRADE_ASCII)
        buf_puts(out, "--- file type: DAT ASCII ---\r\n");
    else
        buf_printf(out, "--- file type: DAT BINARY: %llu ---\r\n", (unsigned long long)dat_bytes);
}
