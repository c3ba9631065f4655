#include "CTesseraUnicode.h"

#include <unicode/unorm2.h>

int32_t tessera_normalize_utf16(int form, const uint16_t *source, int32_t length, uint16_t *destination, int32_t capacity) {
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2 *normalizer = NULL;
    switch (form) {
    case TESSERA_NFC: normalizer = unorm2_getNFCInstance(&status); break;
    case TESSERA_NFD: normalizer = unorm2_getNFDInstance(&status); break;
    case TESSERA_NFKC: normalizer = unorm2_getNFKCInstance(&status); break;
    case TESSERA_NFKD: normalizer = unorm2_getNFKDInstance(&status); break;
    default: return -1;
    }
    if (U_FAILURE(status) || normalizer == NULL) return -1;
    int32_t written = unorm2_normalize(normalizer, (const UChar *)source, length, (UChar *)destination, capacity, &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) return written;
    if (U_FAILURE(status)) return -1;
    return written;
}
