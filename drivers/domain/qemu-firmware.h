/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UEFI firmware for QEMU domains: `<os firmware='efi'>` chosen from the firmware
 * descriptors QEMU's packages install (docs/interop/firmware.json in QEMU's sources), as
 * libvirt chooses, and the domain's own NVRAM made from the chosen varstore template at
 * its first start. See docs/qemu.md, *Firmware*. */
#pragma once

#include <stdbool.h>

#include "model/domain.h"
#include "util/error.h"

/* Where descriptors are read: a file in an earlier directory hides one of the same name
 * in a later one (an empty file hides it for good); all are taken in name order. */
#define QEMU_FIRMWARE_DIRS "/etc/qemu/firmware", "/usr/share/qemu/firmware"

struct qemu_firmware {
        char *descriptor;    /* the JSON file chosen; NULL when the <loader> was written and
                              * no descriptor names it */
        char *code;          /* the executable: pflash unit 0, read-only */
        char *vars_template; /* the varstore template (NULL: none) */
        char *nvram;         /* the domain's varstore: pflash unit 1, read-write */
        bool secure_boot;    /* the descriptor's "secure-boot", or <loader secure='yes'> */
        bool enrolled_keys;
        bool requires_smm; /* the machine needs smm=on and the pflash units secure=on */
};

/* Whether def needs qemu_firmware_select(): firmware='efi', or a pflash <loader> that is
 * secure='yes' or whose <nvram> names a template or no path. */
bool qemu_firmware_wanted(const struct domain_def *def);

/* Chooses def's firmware: the first descriptor (in the order above) whose interface-types
 * has "uefi", whose mapping is a "flash" device with a raw executable, whose targets have
 * the domain's architecture (x86_64 unless written) with a machine pattern that matches its
 * machine ("pc" and "q35" count as pc-i440fx-* and pc-q35-*), and whose features agree
 * with <firmware><feature enabled='yes|no' name='secure-boot|enrolled-keys'/> and
 * <loader secure='yes|no'>. A written <loader> path is used as it is (the descriptor
 * naming it, if any, supplies its features). The NVRAM is <nvram>'s path when written,
 * else nvram_default; its template <nvram template=...>, else the descriptor's.
 * dirs: NULL-terminated, NULL for QEMU_FIRMWARE_DIRS. -EBUSY (a refusal: the host lacks
 * it) naming what was asked when nothing matches ("... install the ovmf package"),
 * -EINVAL for a descriptor that cannot be read as JSON (naming the file). */
int qemu_firmware_select(const struct domain_def *def, const char *nvram_default, char *const *dirs,
                         struct qemu_firmware *ret, struct dv_error *err) _warn_unused_result_;
void qemu_firmware_done(struct qemu_firmware *f);

/* Makes f->nvram from f->vars_template when it does not exist yet: copied into a new file
 * (O_EXCL, 0600, root's) beside it, then linked into place, so that a crash leaves no
 * half-copied varstore; an existing one is the domain's data and is kept as it is
 * (never overwritten, never removed by the agent). Neither path may be a symlink. 0 when
 * it exists or was made; an error naming both paths otherwise. */
int qemu_firmware_nvram_create(const struct qemu_firmware *f,
                               struct dv_error *err) _warn_unused_result_;
