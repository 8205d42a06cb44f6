/* core/banned: functions we never call. Include last in every .c file that
 * handles peer input; a banned call then fails to compile. */
#ifndef CORDON_CORE_BANNED_H
#define CORDON_CORE_BANNED_H

#undef strcpy
#define strcpy(...) cordon_banned_strcpy_use_snprintf_or_memcpy
#undef strcat
#define strcat(...) cordon_banned_strcat_use_snprintf
#undef sprintf
#define sprintf(...) cordon_banned_sprintf_use_snprintf
#undef vsprintf
#define vsprintf(...) cordon_banned_vsprintf_use_vsnprintf
#undef gets
#define gets(...) cordon_banned_gets
#undef atoi
#define atoi(...) cordon_banned_atoi_use_parse_u32
#undef atol
#define atol(...) cordon_banned_atol_use_parse_u32
#undef strtok
#define strtok(...) cordon_banned_strtok_use_strtok_r

#endif
