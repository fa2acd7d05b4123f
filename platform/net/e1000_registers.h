// Register offsets and bits of the Intel 82540EM (PCI/PCI-X Family of
// Gigabit Ethernet Controllers Software Developer's Manual, 8254x SDM, 317453;
// chapter 13 "Register Descriptions", chapter 3 "Receive and Transmit
// Description"), with the datasheet's names. Only what the model uses.
#pragma once

#include "mmu/base/types.h"

namespace e1000 {

// 8254x SDM table 13-2: register offsets in the memory BAR.
constexpr u32 CTRL = 0x0000, STATUS = 0x0008, EECD = 0x0010, EERD = 0x0014, CTRL_EXT = 0x0018,
              MDIC = 0x0020, ICR = 0x00C0, ITR = 0x00C4, ICS = 0x00C8, IMS = 0x00D0, IMC = 0x00D8,
              RCTL = 0x0100, TCTL = 0x0400, RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808,
              RDH = 0x2810, RDT = 0x2818, TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808,
              TDH = 0x3810, TDT = 0x3818, RXCSUM = 0x5000, MTA = 0x5200, RAL0 = 0x5400,
              RAH0 = 0x5404;
constexpr u32 MTA_ENTRIES = 128, RA_ENTRIES = 16;
// Statistics (13.7): 0x4000-0x40FF, every one cleared when read.
constexpr u32 STATS_FIRST = 0x4000, STATS_END = 0x4100;
constexpr u32 MPC = 0x4010, GPRC = 0x4074, BPRC = 0x4078, MPRC = 0x407C, GPTC = 0x4080,
              GORCL = 0x4088, GORCH = 0x408C, GOTCL = 0x4090, GOTCH = 0x4094, RNBC = 0x40A0,
              TORL = 0x40C0, TORH = 0x40C4, TOTL = 0x40C8, TOTH = 0x40CC, TPR = 0x40D0,
              TPT = 0x40D4, MPTC = 0x40F0, BPTC = 0x40F4;

// CTRL (13.4.1).
constexpr u32 CTRL_FD = 1u << 0, CTRL_SLU = 1u << 6, CTRL_SPD_1000 = 2u << 8, CTRL_RST = 1u << 26,
              CTRL_PHY_RST = 1u << 31;
// STATUS (13.4.2): full duplex, link up, 1000 Mb/s, auto-detected 1000.
constexpr u32 STATUS_FD = 1u << 0, STATUS_LU = 1u << 1, STATUS_SPEED_1000 = 2u << 6,
              STATUS_ASDV_1000 = 2u << 8;
// EECD (13.4.3): the Microwire EEPROM's pins, and the software grant.
constexpr u32 EECD_SK = 1u << 0, EECD_CS = 1u << 1, EECD_DI = 1u << 2, EECD_DO = 1u << 3,
              EECD_REQ = 1u << 6, EECD_GNT = 1u << 7, EECD_PRES = 1u << 8;
// EERD (13.4.4): start, done, address 15:8, data 31:16.
constexpr u32 EERD_START = 1u << 0, EERD_DONE = 1u << 4;
// MDIC (13.4.7).
constexpr u32 MDIC_OP_WRITE = 1u << 26, MDIC_OP_READ = 2u << 26, MDIC_READY = 1u << 28,
              MDIC_INT_EN = 1u << 29, MDIC_ERROR = 1u << 30;
// Interrupt causes, ICR/ICS/IMS/IMC (13.4.17).
constexpr u32 ICR_TXDW = 1u << 0, ICR_TXQE = 1u << 1, ICR_LSC = 1u << 2, ICR_RXDMT0 = 1u << 4,
              ICR_RXO = 1u << 6, ICR_RXT0 = 1u << 7, ICR_MDAC = 1u << 9;
constexpr u32 ICR_VALID = 0x0001F6DF; // the causes the 82540EM defines
// RCTL (13.4.22).
constexpr u32 RCTL_EN = 1u << 1, RCTL_UPE = 1u << 3, RCTL_MPE = 1u << 4, RCTL_LPE = 1u << 5,
              RCTL_RDMTS_SHIFT = 8, RCTL_MO_SHIFT = 12, RCTL_BAM = 1u << 15, RCTL_BSIZE_SHIFT = 16,
              RCTL_BSEX = 1u << 25, RCTL_SECRC = 1u << 26;
// TCTL (13.4.33).
constexpr u32 TCTL_EN = 1u << 1;
constexpr u32 RAH_AV = 1u << 31;

// Descriptors (chapter 3): 16 bytes each; ring lengths are multiples of 128.
constexpr u32 DESCRIPTOR_SIZE = 16, RING_ALIGN = 128;
// Receive descriptor status (3.2.3.1).
constexpr u8 RXD_DD = 1u << 0, RXD_EOP = 1u << 1, RXD_IXSM = 1u << 2;
// Transmit descriptor command byte (3.3.3.1, 3.3.7.1) and status.
constexpr u8 TXD_EOP = 1u << 0, TXD_IFCS = 1u << 1, TXD_TSE = 1u << 2, TXD_RS = 1u << 3,
             TXD_DEXT = 1u << 5;
constexpr u8 TXD_DD = 1u << 0;
// Extended descriptors' DTYP (bits 23:20 of the length dword).
constexpr u8 DTYP_CONTEXT = 0, DTYP_DATA = 1;
// Context descriptor TUCMD (3.3.6.1): IPv4, TCP.
constexpr u8 TUCMD_TCP = 1u << 0, TUCMD_IP = 1u << 1, TUCMD_TSE = 1u << 2;
// Data descriptor POPTS (3.3.7.1): insert the IP and the TCP/UDP checksum.
constexpr u8 POPTS_IXSM = 1u << 0, POPTS_TXSM = 1u << 1;

// The PHY (an internal Marvell 88E1011-like PHY at MDIO address 1) and its
// registers (8254x SDM 13.5; IEEE 802.3 clause 22).
constexpr u32 PHY_ADDRESS = 1;
constexpr u8 PHY_CTRL = 0, PHY_STATUS = 1, PHY_ID1 = 2, PHY_ID2 = 3, PHY_AUTONEG_ADV = 4,
             PHY_LP_ABILITY = 5, PHY_AUTONEG_EXP = 6, PHY_1000T_CTRL = 9, PHY_1000T_STATUS = 10,
             PHY_EXT_STATUS = 15, PHY_SPEC_CTRL = 16, PHY_SPEC_STATUS = 17;
constexpr u16 PHY_CTRL_RESET = 1u << 15, PHY_CTRL_RESTART_AUTONEG = 1u << 9;
constexpr u16 PHY_STATUS_LINK = 1u << 2, PHY_STATUS_AUTONEG_DONE = 1u << 5;
// 88E1011 specific status: 1000 Mb/s, full duplex, resolved, link.
constexpr u16 PHY_SPEC_STATUS_LINK_UP = 0xAC00;

} // namespace e1000
