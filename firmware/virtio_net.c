/* virtio-net (to come) */
