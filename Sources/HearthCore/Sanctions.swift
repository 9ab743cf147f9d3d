/// What staff decided about a member that must outlive their seat: the role staff set, the
/// media staff muted (which, with `selfUnmute` off, the member may not turn back on) and an
/// observer's grants.
///
/// They belong to the user (the token's `sub`), not to the seat: when a seat goes (left,
/// expired, removed, denied) the room keeps them by user id for the rest of the session, and a
/// new seat for the same user starts from them. Otherwise a member could shed a demotion or a
/// mute by sending `leave` and saying `hello` again with the same token.
struct Sanctions: Hashable, Sendable {
    var role: Role?
    var mutedByStaff: Set<MediaKind>
    var mediaGranted: Bool
    var chatGranted: Bool

    /// What `seat` carries that staff decided, or nil when there is nothing to keep.
    init?(keptFrom seat: Seat) {
        role = seat.roleSetByStaff ? seat.role : nil
        mutedByStaff = seat.mutedByStaff
        mediaGranted = seat.mediaGranted
        chatGranted = seat.chatGranted
        if role == nil && mutedByStaff.isEmpty && !mediaGranted && !chatGranted { return nil }
    }

    /// The role a returning user's new seat gets: staff's decision over the token's.
    func role(given tokenRole: Role) -> Role { role ?? tokenRole }

    /// Puts the decisions back on a returning user's new seat (made with `role(given:)`).
    func apply(to seat: inout Seat) {
        seat.roleSetByStaff = role != nil
        seat.mutedByStaff = mutedByStaff
        // Grants mean something only to an observer (and end when the role changes).
        seat.mediaGranted = seat.role == .observer && mediaGranted
        seat.chatGranted = seat.role == .observer && chatGranted
    }
}
