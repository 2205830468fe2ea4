/* Error codes: the descriptions and names behind casty_strerror and
 * casty_err_name (the table itself is CASTY_ERRNO_MAP in casty/error.h). */
#include <string.h>

#include "casty/error.h"

const char *casty_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define CASTY_ERR_TEXT_(name, value, text)                                     \
    case (value):                                                              \
        return text;
        CASTY_ERRNO_MAP(CASTY_ERR_TEXT_)
#undef CASTY_ERR_TEXT_
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        /* A system failure passed through as -errno. strerrordesc_np is
         * thread-safe and returns a static string (or NULL). */
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *casty_err_name(int code)
{
    switch (code) {
#define CASTY_ERR_NAME_(name, value, text)                                     \
    case (value):                                                              \
        return "CASTY_" #name;
        CASTY_ERRNO_MAP(CASTY_ERR_NAME_)
#undef CASTY_ERR_NAME_
    default:
        return "CASTY_UNKNOWN";
    }
}
