/*
 * virtio-net decisions that do not need a tap or KVM: which data path a
 * vhost= setting gives on hosts with and without /dev/vhost-net, the
 * features offered, and the tap offloads that follow from what the guest
 * accepted.
 */
#include <errno.h>
#include <linux/if_tun.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "herd/vhost_net.h"
#include "herd/virtio_net.h"

#define BIT(n) (1ULL << (n))

static void test_vhost_on_without_device_is_an_error(void **state)
{
    enum net_path path = NET_PATH_VHOST;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(virtio_net_choose_path(VHOST_ON, false, &path, &err), -ENODEV);
    assert_non_null(strstr(err.msg, "/dev/vhost-net"));
}

static void test_path_choice(void **state)
{
    enum net_path path = NET_PATH_VHOST;
    struct herd_err err = {0};

    (void)state;
    /* auto: vhost where it exists, userspace where it does not */
    assert_int_equal(virtio_net_choose_path(VHOST_AUTO, false, &path, &err), 0);
    assert_int_equal(path, NET_PATH_USERSPACE);
    assert_int_equal(virtio_net_choose_path(VHOST_AUTO, true, &path, &err), 0);
    assert_int_equal(path, NET_PATH_VHOST);
    /* on: vhost; off: userspace even when vhost exists */
    assert_int_equal(virtio_net_choose_path(VHOST_ON, true, &path, &err), 0);
    assert_int_equal(path, NET_PATH_VHOST);
    assert_int_equal(virtio_net_choose_path(VHOST_OFF, true, &path, &err), 0);
    assert_int_equal(path, NET_PATH_USERSPACE);
    assert_string_equal(err.msg, "");
}

static void test_vhost_ring_features(void **state)
{
    uint64_t out = 0, all = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_EVENT_IDX) |
                            BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_NET_F_MRG_RXBUF);

    (void)state;
    /* Offload bits stay with the tap; ring-layout bits go to vhost. */
    assert_int_equal(vhost_net_ring_features(all | BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_MAC),
                                             all, &out), 0);
    assert_int_equal(out, all);
    /* A guest relying on EVENT_IDX cannot be served by a vhost without it. */
    assert_int_equal(vhost_net_ring_features(all, all & ~BIT(VIRTIO_F_EVENT_IDX), &out),
                     -ENOTSUP);
}

static void test_features_offered(void **state)
{
    uint64_t f = virtio_net_features(NET_PATH_USERSPACE);

    (void)state;
    assert_true(f & BIT(VIRTIO_NET_F_MAC));
    assert_true(f & BIT(VIRTIO_NET_F_STATUS));
    assert_true(f & BIT(VIRTIO_NET_F_MRG_RXBUF));
    assert_true(f & BIT(VIRTIO_NET_F_CSUM));
    assert_true(f & BIT(VIRTIO_NET_F_GUEST_CSUM));
    /* Transport bits are the transport's to add, not the device's. */
    assert_false(f & BIT(VIRTIO_F_VERSION_1));
}

static void test_tap_offloads_follow_guest_features(void **state)
{
    (void)state;
    assert_int_equal(virtio_net_tap_offloads(0), 0);
    /* TSO without checksum offload cannot be honoured: nothing. */
    assert_int_equal(virtio_net_tap_offloads(BIT(VIRTIO_NET_F_GUEST_TSO4)), 0);
    assert_int_equal(virtio_net_tap_offloads(BIT(VIRTIO_NET_F_GUEST_CSUM)), TUN_F_CSUM);
    assert_int_equal(virtio_net_tap_offloads(BIT(VIRTIO_NET_F_GUEST_CSUM) |
                                             BIT(VIRTIO_NET_F_GUEST_TSO4) |
                                             BIT(VIRTIO_NET_F_GUEST_TSO6)),
                     TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
    /* Host-side (guest TX) offloads never turn on tap RX offloads. */
    assert_int_equal(virtio_net_tap_offloads(BIT(VIRTIO_NET_F_HOST_TSO4) |
                                             BIT(VIRTIO_NET_F_CSUM)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vhost_on_without_device_is_an_error),
        cmocka_unit_test(test_path_choice),
        cmocka_unit_test(test_vhost_ring_features),
        cmocka_unit_test(test_features_offered),
        cmocka_unit_test(test_tap_offloads_follow_guest_features),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
