// The policies as their wire and configuration strings (`staff-only`, `waiting-room`): the
// server's configuration holds them typed and writes them back as these strings.
extension ChatPolicy: Codable {}
extension FacilitatorDropPolicy: Codable {}
extension MediaMode: Codable {}
