import BerthWire

/// The one place where a failure inside the mesh becomes an HTTP status and a body a person can read.
public enum Failures {
    /// A request header that sets the request's deadline in milliseconds; it is not forwarded.
    public static let timeoutHeader = "x-berth-timeout-ms"
    /// A request header naming the instance, for routes that do not name one; it is not forwarded.
    public static let instanceHeader = "x-berth-instance"
    /// Headers that steer the edge, so a request may send each once: a second is refused (400), never forwarded.
    public static let singleHeaders = [timeoutHeader, instanceHeader]
    /// A response header naming the error code when Berth, not the app, answered.
    public static let errorHeader = "x-berth-error"

    public static func status(for code: ErrorCode) -> Int {
        switch code {
        case .appUnreachable, .appFailed, .instanceLost: 502
        case .noInstance, .saturated, .routerUnreachable, .appUnavailable: 503
        case .deadlineExceeded: 504
        case .tooLarge: 413
        case .badRequest: 400
        case .none, .internal: 500
        }
    }

    /// The response for `error`: its status, `x-berth-error`, `Retry-After` for 503, and one line of text.
    public static func response(for error: MeshError, status: Int? = nil) -> EdgeResponse {
        let status = status ?? Self.status(for: error.code)
        var response = EdgeResponse.text("berth \(error.component): \(error.message)\n", status: status)
        response.headers.append(Header(errorHeader, error.code.name))
        if status == 503 { response.headers.append(Header("retry-after", "1")) }
        response.meshError = error
        return response
    }
}

extension EdgeResponse {
    /// An answer from the mesh itself; see `Failures`.
    public static func failure(_ error: MeshError, status: Int? = nil) -> EdgeResponse {
        Failures.response(for: error, status: status)
    }
}
