/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/domain/qemu-firmware.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"

void qemu_firmware_done(struct qemu_firmware *f) {
        if (!f)
                return;
        free(f->descriptor);
        free(f->code);
        free(f->vars_template);
        free(f->nvram);
        *f = (struct qemu_firmware){0};
}

bool qemu_firmware_wanted(const struct domain_def *def) {
        const struct domain_os *os = &def->os;
        if (os->firmware == DOMAIN_FIRMWARE_EFI)
                return true;
        if (!os->has_loader || os->loader.type != DOMAIN_LOADER_PFLASH)
                return false;
        return os->loader.secure == DOMAIN_TRI_YES ||
               (os->has_nvram && (os->nvram.template_path || !os->nvram.path));
}

/* ---- descriptors -------------------------------------------------------------------------- */

/* The descriptors' paths in the order they are tried: names sorted, each taken from the
 * first directory that has it (an empty file there hides it). */
static int descriptor_paths(char *const *dirs, char ***ret) {
        _cleanup_strv_free_ char **names = NULL, **paths = NULL;
        for (size_t d = 0; dirs[d]; d++) {
                DIR *dir = opendir(dirs[d]);
                if (!dir)
                        continue;
                struct dirent *e;
                int r = 0;
                while (r >= 0 && (e = readdir(dir))) {
                        size_t n = strlen(e->d_name);
                        if (e->d_name[0] == '.' || n < 6 || !streq(e->d_name + n - 5, ".json") ||
                            strv_contains(names, e->d_name))
                                continue;
                        if (strv_push(&names, e->d_name) < 0 ||
                            strv_pushf(&paths, "%s/%s", dirs[d], e->d_name) < 0)
                                r = -ENOMEM;
                }
                closedir(dir);
                if (r < 0)
                        return r;
        }
        /* Sort both by name (insertion sort: a few files). */
        size_t n = strv_length(names);
        for (size_t i = 1; i < n; i++)
                for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
                        SWAP(names[k - 1], names[k]);
                        SWAP(paths[k - 1], paths[k]);
                }
        *ret = TAKE_PTR(paths);
        return 0;
}

static bool json_array_has(struct json_object *o, const char *key, const char *value) {
        struct json_object *a = NULL;
        if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(a, i));
                if (s && streq(s, value))
                        return true;
        }
        return false;
}

static const char *json_path_str(struct json_object *o, const char *a, const char *b) {
        struct json_object *x = NULL, *y = NULL;
        if (!json_object_object_get_ex(o, a, &x))
                return NULL;
        if (b && !json_object_object_get_ex(x, b, &y))
                return NULL;
        return json_object_get_string(b ? y : x);
}

/* "pc" and "q35", QEMU's aliases, as the versioned names the descriptors' patterns
 * match. */
static const char *machine_for_match(const char *machine) {
        if (!machine || streq(machine, "pc"))
                return "pc-i440fx-0";
        if (streq(machine, "q35"))
                return "pc-q35-0";
        return machine;
}

static bool targets_match(struct json_object *o, const char *arch, const char *machine) {
        struct json_object *t = NULL;
        if (!json_object_object_get_ex(o, "targets", &t) ||
            !json_object_is_type(t, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(t); i++) {
                struct json_object *e = json_object_array_get_idx(t, i);
                const char *a = json_path_str(e, "architecture", NULL);
                struct json_object *m = NULL;
                if (!a || !streq(a, arch) || !json_object_object_get_ex(e, "machines", &m) ||
                    !json_object_is_type(m, json_type_array))
                        continue;
                for (size_t k = 0; k < json_object_array_length(m); k++) {
                        const char *pat = json_object_get_string(json_object_array_get_idx(m, k));
                        if (pat && fnmatch(pat, machine, 0) == 0)
                                return true;
                }
        }
        return false;
}

/* want: UNSET (either), YES (must have), NO (must not). */
static bool feature_ok(struct json_object *o, const char *name, enum domain_tristate want) {
        if (want == DOMAIN_TRI_UNSET)
                return true;
        return json_array_has(o, "features", name) == (want == DOMAIN_TRI_YES);
}

struct wants {
        const char *arch, *machine, *code; /* code: a written <loader> path, else NULL */
        enum domain_tristate secure_boot, enrolled_keys;
};

/* 1 and *ret filled when the descriptor at path fits, 0 when not, -EINVAL when it cannot
 * be read. */
static int descriptor_try(const char *path, const struct wants *w, struct qemu_firmware *ret,
                          struct dv_error *err) {
        struct stat st;
        if (stat(path, &st) < 0 || st.st_size == 0)
                return 0; /* an empty file masks a descriptor */
        struct json_object *o = json_object_from_file(path);
        if (!o)
                return dv_error_add(err, -EINVAL, 0, "firmware descriptor %s: %s", path,
                                    json_util_get_last_err() ? json_util_get_last_err()
                                                             : "not JSON");
        int r = 0;
        const char *device = json_path_str(o, "mapping", "device");
        struct json_object *mapping = NULL, *exe = NULL, *tmpl = NULL;
        (void)json_object_object_get_ex(o, "mapping", &mapping);
        if (mapping)
                (void)json_object_object_get_ex(mapping, "executable", &exe);
        if (mapping)
                (void)json_object_object_get_ex(mapping, "nvram-template", &tmpl);
        const char *code = exe ? json_path_str(exe, "filename", NULL) : NULL;
        const char *fmt = exe ? json_path_str(exe, "format", NULL) : NULL;
        const char *vars = tmpl ? json_path_str(tmpl, "filename", NULL) : NULL;
        if (json_array_has(o, "interface-types", "uefi") && device && streq(device, "flash") &&
            code && code[0] == '/' && (!fmt || streq(fmt, "raw")) && (!vars || vars[0] == '/') &&
            (!w->code || streq(w->code, code)) && targets_match(o, w->arch, w->machine) &&
            feature_ok(o, "secure-boot", w->secure_boot) &&
            feature_ok(o, "enrolled-keys", w->enrolled_keys)) {
                ret->descriptor = strdup(path);
                ret->code = strdup(code);
                ret->vars_template = vars ? strdup(vars) : NULL;
                ret->secure_boot = json_array_has(o, "features", "secure-boot");
                ret->enrolled_keys = json_array_has(o, "features", "enrolled-keys");
                ret->requires_smm = json_array_has(o, "features", "requires-smm");
                r = ret->descriptor && ret->code && (!vars || ret->vars_template)
                            ? 1
                            : dv_error_oom(err);
        }
        json_object_put(o);
        return r;
}

static const char *tri_text(enum domain_tristate t) {
        return t == DOMAIN_TRI_YES ? "with" : "without";
}

int qemu_firmware_select(const struct domain_def *def, const char *nvram_default, char *const *dirs,
                         struct qemu_firmware *ret, struct dv_error *err) {
        static char *const default_dirs[] = {QEMU_FIRMWARE_DIRS, NULL};
        const struct domain_os *os = &def->os;
        _cleanup_(qemu_firmware_done) struct qemu_firmware f = {0};
        struct wants w = {
                .arch = os->arch ? os->arch : "x86_64",
                .machine = machine_for_match(os->machine),
                .code = os->has_loader ? os->loader.path : NULL,
                .secure_boot = os->has_fw_features ? os->fw_secure_boot : DOMAIN_TRI_UNSET,
                .enrolled_keys = os->has_fw_features ? os->fw_enrolled_keys : DOMAIN_TRI_UNSET,
        };
        if (os->has_loader && os->loader.secure != DOMAIN_TRI_UNSET)
                w.secure_boot = os->loader.secure;
        _cleanup_strv_free_ char **paths = NULL;
        if (descriptor_paths(dirs ? dirs : default_dirs, &paths) < 0)
                return dv_error_oom(err);
        int r = 0;
        for (size_t k = 0; paths && paths[k] && r == 0; k++)
                r = descriptor_try(paths[k], &w, &f, err);
        if (r < 0)
                return r;
        if (r == 0 && w.code) {
                /* A <loader> no descriptor names: as written. */
                f.code = strdup(w.code);
                f.secure_boot = f.requires_smm = w.secure_boot == DOMAIN_TRI_YES;
                if (!f.code)
                        return dv_error_oom(err);
        } else if (r == 0) {
                _cleanup_free_ char *where = strv_join(dirs ? dirs : default_dirs, " or ", false);
                const char *sb = w.secure_boot == DOMAIN_TRI_UNSET ? NULL : tri_text(w.secure_boot);
                const char *ek =
                        w.enrolled_keys == DOMAIN_TRI_UNSET ? NULL : tri_text(w.enrolled_keys);
                return dv_error_add(
                        err, -EBUSY, os->line,
                        "<os firmware='efi'> of domain %s: no firmware descriptor in %s offers "
                        "UEFI for %s machine %s%s%s%s%s%s (install the ovmf package, which "
                        "brings QEMU's descriptors)",
                        def->name, strna(where), w.arch, os->machine ? os->machine : "pc",
                        sb ? ", " : "", sb ? sb : "", sb ? " secure boot" : "", ek ? ", " : "",
                        ek ? (w.enrolled_keys == DOMAIN_TRI_YES ? "with enrolled keys"
                                                                : "without enrolled keys")
                           : "");
        }
        if (os->has_nvram && os->nvram.template_path) {
                free(f.vars_template);
                f.vars_template = strdup(os->nvram.template_path);
                if (!f.vars_template)
                        return dv_error_oom(err);
        }
        f.nvram = strdup(os->has_nvram && os->nvram.path ? os->nvram.path : nvram_default);
        if (!f.nvram)
                return dv_error_oom(err);
        if (f.descriptor)
                log_debug("domain %s: firmware %s from %s, NVRAM %s", def->name, f.code,
                          f.descriptor, f.nvram);
        *ret = f;
        f = (struct qemu_firmware){0};
        return 0;
}

/* ---- the domain's NVRAM --------------------------------------------------------------------- */

int qemu_firmware_nvram_create(const struct qemu_firmware *f, struct dv_error *err) {
        struct stat st;
        if (lstat(f->nvram, &st) == 0) {
                if (!S_ISREG(st.st_mode))
                        return dv_error_add(err, -EBADF, 0,
                                            "NVRAM %s is not a regular file (a symlink?): not used",
                                            f->nvram);
                return 0;
        }
        if (errno != ENOENT)
                return dv_error_add(err, -errno, 0, "NVRAM %s: %m", f->nvram);
        if (!f->vars_template)
                return dv_error_add(err, -ENOENT, 0,
                                    "NVRAM %s does not exist and no template names what to put "
                                    "in it (<nvram template=...>)",
                                    f->nvram);
        _cleanup_close_ int in = open(f->vars_template, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return dv_error_add(err, -errno, 0, "cannot read the NVRAM template %s: %m",
                                    f->vars_template);
        _cleanup_free_ char *dir = path_dirname(f->nvram);
        if (!dir)
                return dv_error_oom(err);
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create %s: %s", dir, strerror(-r));
        /* An unnamed file in the directory, filled, then linked under its name: never seen
         * half-copied, and linkat fails rather than replace a file made meanwhile. */
        _cleanup_close_ int out = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (out < 0)
                return dv_error_add(err, -errno, 0, "cannot create the NVRAM %s: %m", f->nvram);
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
                if (n == 0)
                        break;
                if (n < 0)
                        return dv_error_add(err, -errno, 0, "cannot copy %s to %s: %m",
                                            f->vars_template, f->nvram);
        }
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", out);
        if (fsync(out) < 0 || linkat(AT_FDCWD, proc, AT_FDCWD, f->nvram, AT_SYMLINK_FOLLOW) < 0)
                return dv_error_add(err, -errno, 0, "cannot create the NVRAM %s: %m", f->nvram);
        log_info("NVRAM %s made from %s", f->nvram, f->vars_template);
        return 0;
}
