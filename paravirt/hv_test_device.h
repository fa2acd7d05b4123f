// The Hyper-V test device that kvm-unit-tests' hyperv_synic and
// hyperv_connections drive (QEMU's `-device hyperv-testdev`): one 32-bit
// write-only control port at 0x3000 through which a bare-metal test asks
// the host to raise SINTs and to open message and event connections back to
// itself, the parts of the SynIC a guest cannot reach on its own.
//
// The written value is (conn_id << 24) | (control << 16) | (vp << 8) | sint:
//   1 SINT route create   (vp, sint)        2 SINT route destroy (vp, sint)
//   3 SINT route set      (vp, sint): raise that SINT's vector on the VP
//   4 message conn create (conn_id -> vp, sint)   5 ... destroy (conn_id)
//   6 event conn create   (conn_id -> vp, sint)   7 ... destroy (conn_id)
// A message connection answers HvPostMessage to conn_id by posting the same
// message back into the SINT's slot; an event connection answers
// HvSignalEvent by setting event flag conn_id (+ the caller's flag number,
// which must be 0) of the SINT and interrupting.
//
// The guest is untrusted: an unknown control, a VP or SINT out of range, a
// duplicate or missing route or connection, any access other than a 32-bit
// write at 0x3000 is ignored, as QEMU ignores it (where QEMU asserts, this
// device drops the request). Reads return all ones.
#pragma once

#include "mmu/bus/io_device.h"
#include "paravirt/tlfs.h"

#include <bitset>
#include <map>
#include <vector>

class HyperV;

class HvTestDevice final : public IoDevice {
public:
    static constexpr u16 PORT = 0x3000;
    static constexpr u32 PORT_COUNT = 4;

    enum Control : u8 {
        SINT_ROUTE_CREATE = 1,
        SINT_ROUTE_DESTROY = 2,
        SINT_ROUTE_SET_SINT = 3,
        MSG_CONN_CREATE = 4,
        MSG_CONN_DESTROY = 5,
        EVT_CONN_CREATE = 6,
        EVT_CONN_DESTROY = 7,
    };

    explicit HvTestDevice(HyperV& hv);
    // Takes its connections out of the partition's table.
    ~HvTestDevice() override;
    HvTestDevice(const HvTestDevice&) = delete;
    HvTestDevice& operator=(const HvTestDevice&) = delete;

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    // What the guest wrote, decoded (io_write's work after the size check).
    void control(u8 control, unsigned vp, unsigned sint, u8 connection_id);

    bool has_route(unsigned vp, unsigned sint) const;
    bool owns_connection(u8 connection_id) const { return m_connections.count(connection_id); }

private:
    struct Target {
        unsigned vp;
        unsigned sint;
        bool event;
    };
    bool valid_target(unsigned vp, unsigned sint) const;
    void create_connection(u8 connection_id, Target target);
    void destroy_connection(u8 connection_id, bool event);

    HyperV& m_hv;
    std::vector<std::bitset<HV_SINT_COUNT>> m_routes; // by VP index
    std::map<u8, Target> m_connections;               // the ones this device registered
};
