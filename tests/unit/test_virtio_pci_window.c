/*
 * The VIRTIO_PCI_CAP_PCI_CFG window's bounds check (vmm/virtio/pci.c), as a
 * pure function, so it runs without KVM: every access inside BAR 0 with a
 * length of 1, 2 or 4 passes; offsets whose offset + length wraps around in
 * 32 bits, ends past the BAR, other lengths and other BARs do not.
 * test_virtio_pci.c drives the same window through config space on a KVM VM
 * (in the nested host) and checks nothing is read or written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "herd/virtio_pci.h"

static void test_inside(void **state)
{
    static const uint32_t lens[] = {1, 2, 4};

    for (unsigned i = 0; i < 3; i++) {
        uint32_t len = lens[i];

        assert_true(virtio_pci_cfg_window_ok(0, 0, len));
        assert_true(virtio_pci_cfg_window_ok(0, 0x14, len));
        assert_true(virtio_pci_cfg_window_ok(0, VIRTIO_BAR_SIZE - len, len));
    }
}

static void test_wraps_and_overruns_refused(void **state)
{
    static const uint32_t lens[] = {1, 2, 4};

    for (unsigned i = 0; i < 3; i++) {
        uint32_t len = lens[i];

        /* off + len wraps to 0 .. len - 1: inside the BAR if computed in 32 bits */
        for (uint32_t k = 0; k < len; k++)
            assert_false(virtio_pci_cfg_window_ok(0, 0xffffffffu - k, len));
        assert_false(virtio_pci_cfg_window_ok(0, 0x80000000u, len));
        assert_false(virtio_pci_cfg_window_ok(0, VIRTIO_BAR_SIZE - len + 1, len));
        assert_false(virtio_pci_cfg_window_ok(0, VIRTIO_BAR_SIZE, len));
        assert_false(virtio_pci_cfg_window_ok(1, 0, len));
        assert_false(virtio_pci_cfg_window_ok(5, 0, len));
    }
    static const uint32_t bad_lens[] = {0, 3, 5, 8, 0xffffffffu, 0x80000000u};
    for (unsigned i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        assert_false(virtio_pci_cfg_window_ok(0, 0, bad_lens[i]));
        assert_false(virtio_pci_cfg_window_ok(0, 1, bad_lens[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inside),
        cmocka_unit_test(test_wraps_and_overruns_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
