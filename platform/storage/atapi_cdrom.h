// An ATAPI CD/DVD-ROM drive on an IDE channel (ATA/ATAPI-6, T13/1410D,
// 8.16 IDENTIFY PACKET DEVICE, 8.21 PACKET, 9.10-9.11 the packet protocols;
// the commands of MMC-3 and SPC-3), as Linux's ata_piix + sr_mod and
// SeaBIOS's El Torito boot use it. The medium is a read-only image of
// 2048-byte sectors on the 512-byte-sector block layer.
//
// A PACKET command takes a 12-byte CDB through the data port (interrupt
// reason CoD), then moves its data by PIO, a DRQ block of at most the byte
// count limit at a time, or by bus-master DMA when features bit 0 asks, and
// ends with a status that carries CHECK CONDITION as ERR, the sense key in
// the error register and the sense data for REQUEST SENSE. The tray is
// modelled apart from the disc: START STOP UNIT opens and closes it (unless
// PREVENT ALLOW MEDIUM REMOVAL locked it), the host may take the disc out or
// put another in, and a new disc is announced by UNIT ATTENTION and a media
// event (GET EVENT STATUS NOTIFICATION).
#pragma once

#include "platform/storage/ide_channel.h"
#include "platform/storage/scsi.h"

#include <functional>
#include <string>

class AtapiCdrom final : public IdeDevice {
public:
    // ATA commands a packet device takes (ATA/ATAPI-6 chapter 8).
    enum Command : u8 {
        NOP = 0x00,
        DEVICE_RESET = 0x08,
        READ_SECTORS = 0x20,
        EXECUTE_DEVICE_DIAGNOSTIC = 0x90,
        PACKET = 0xA0,
        IDENTIFY_PACKET_DEVICE = 0xA1,
        STANDBY_IMMEDIATE = 0xE0,
        IDLE_IMMEDIATE = 0xE1,
        CHECK_POWER_MODE = 0xE5,
        SLEEP = 0xE6,
        IDENTIFY_DEVICE = 0xEC,
        SET_FEATURES = 0xEF,
    };
    // SCSI operation codes (SPC-3, MMC-3).
    enum Scsi : u8 {
        TEST_UNIT_READY = 0x00,
        REQUEST_SENSE = 0x03,
        INQUIRY = 0x12,
        START_STOP_UNIT = 0x1B,
        PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E,
        READ_CAPACITY = 0x25,
        READ_10 = 0x28,
        READ_TOC = 0x43,
        GET_CONFIGURATION = 0x46,
        GET_EVENT_STATUS_NOTIFICATION = 0x4A,
        READ_DISC_INFORMATION = 0x51,
        MODE_SENSE_10 = 0x5A,
        READ_12 = 0xA8,
        SET_CD_SPEED = 0xBB,
        MECHANISM_STATUS = 0xBD,
    };
    // Sense keys (SPC-3 4.5.6), as AtapiCdrom::ILLEGAL_REQUEST and so on.
    using enum scsi::SenseKey;
    static constexpr u32 BLOCK_SIZE = 2048;
    static constexpr unsigned CDB_SIZE = 12;
    // Interrupt reason, in the sector count register (ATA/ATAPI-6 9.10).
    static constexpr u8 REASON_COD = 0x01, REASON_IO = 0x02;
    // A PIO read moves through a buffer of this many sectors at a time.
    static constexpr u32 PIO_CHUNK_BLOCKS = 16;
    // The largest read moved by DMA in one command: the bus-master engine
    // moves a command's data in one pass, so this bounds the buffer (the
    // same 32 MiB an LBA48 DMA of an ATA disk may ask for). A larger READ
    // by DMA is refused as an invalid field; hosts split far smaller.
    static constexpr u32 MAX_DMA_BLOCKS = 16384;
    // The medium is called a DVD past what a CD holds (80 minutes).
    static constexpr u64 CD_MAX_BLOCKS = 80 * 60 * 75;

    // `disc` may be null: the drive is empty.
    AtapiCdrom(std::unique_ptr<BlockDevice> disc, std::string serial);

    bool is_atapi() const override { return true; }
    void execute(u8 command) override;
    void visit_state(StateVisitor& v) override;

    // The host's side of the tray: take the disc out (the tray stays as it
    // is) or put one in (closing the tray), as a QMP eject or
    // blockdev-change-medium does. Requests in flight on the old disc are
    // drained first.
    void remove_disc();
    void insert_disc(std::unique_ptr<BlockDevice> disc);
    // The host's eject button (QMP eject, blockdev-open-tray): the tray
    // opens unless the guest locked it. A locked tray gets an eject request
    // (the media event the guest's driver answers by unlocking and
    // ejecting, MMC-3 Table 113); `force` also unlocks the tray and opens it
    // anyway, as QEMU's ide-cd does. Returns whether the tray moved.
    bool host_open_tray(bool force);
    // Closes the tray (QMP blockdev-close-tray); a disc in it is announced
    // as new. Returns whether the tray moved.
    bool host_close_tray();
    // Told when the guest moves the tray itself (START STOP UNIT), for
    // QMP's DEVICE_TRAY_MOVED; the host's own moves are not reported here.
    void set_tray_listener(std::function<void(bool open)> listener)
    {
        m_tray_listener = std::move(listener);
    }

    bool has_disc() const { return m_disk != nullptr; }
    bool tray_open() const { return m_tray_open; }
    bool locked() const { return m_locked; }
    // 2048-byte blocks on the disc (0 without one).
    u64 blocks() const;
    std::array<u16, 256> identify() const;

protected:
    void set_signature() override;
    void pio_block_done() override;
    void dma_done(bool ok) override;

private:
    enum class Phase : u8 { None, Cdb, Reply, ReadPio, ReadDma };
    // MMC-3 Table 113, media event codes.
    enum class MediaEvent : u8 { None = 0, EjectRequest = 1, NewMedia = 2, MediaRemoval = 3 };

    void take_cdb();
    void run_cdb();
    // Ends the command: GOOD, or CHECK CONDITION with this sense.
    void command_ok();
    void check_condition(u8 key, u8 asc, u8 ascq = 0);
    bool medium_ready();
    // Sends m_buffer[0, min(length, allocation)) to the host.
    void reply(u32 length, u32 allocation);
    // The next PIO DRQ block of the data in m_buffer[m_pos, m_end).
    void next_pio_block();
    void read_sectors(u64 lba, u64 count);
    void read_next_chunk();

    void inquiry();
    void mode_sense();
    void read_toc();
    void get_configuration();
    void get_event_status();
    void start_stop_unit();
    void read_disc_information();
    void mechanism_status();

    std::string m_serial;
    // The command in progress.
    Phase m_phase = Phase::None;
    std::array<u8, CDB_SIZE> m_cdb{};
    bool m_dma = false;
    u16 m_byte_limit = 0;
    u32 m_pos = 0; // next byte of m_buffer for the host
    u32 m_end = 0;
    u64 m_lba = 0;       // next sector of a READ
    u64 m_remaining = 0; // sectors of a READ not yet in the buffer
    // Sense data of the last command (SPC-3 4.5).
    u8 m_sense_key = NO_SENSE, m_asc = 0, m_ascq = 0;
    bool m_unit_attention = false;
    MediaEvent m_media_event = MediaEvent::None;
    bool m_tray_open = false;
    bool m_locked = false;
    u8 m_transfer_mode = 0;
    std::function<void(bool open)> m_tray_listener;
};
