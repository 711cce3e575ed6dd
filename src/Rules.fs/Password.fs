namespace Lb.Rules

open System
open System.Globalization
open System.Security.Cryptography
open System.Text

/// A stored password: PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) with its salt and iteration count, written as the
/// self-describing `pbkdf2-sha256$ITERATIONS$SALT$HASH` (salt and hash in base64). Only `Password.parse`
/// builds one, so every value here has a known algorithm, enough iterations and a salt.
type PasswordHash =
    private
        { iterations: int
          salt: byte[]
          hash: byte[] }

    member h.Iterations = h.iterations
    member h.Salt = Array.copy h.salt

    /// The stored form, as `lb hash-password` prints it and `Password.parse` reads it back.
    override h.ToString() =
        let iterations = h.iterations.ToString(CultureInfo.InvariantCulture)
        $"pbkdf2-sha256${iterations}${Convert.ToBase64String h.salt}${Convert.ToBase64String h.hash}"

/// Hashing and checking the stats password. Deterministic: the salt is an argument (the shell draws it), so
/// everything here is a function of its inputs.
[<RequireQualifiedAccess>]
module Password =

    [<Literal>]
    let Scheme = "pbkdf2-sha256"

    /// `lb hash-password`'s default. OWASP's Password Storage Cheat Sheet asks 600,000 for PBKDF2-HMAC-SHA256
    /// on fast servers; on a 2-core machine that is 0.5 s per check and `lb check` tries a dozen well-known
    /// passwords, so the default is lower and `--iterations` raises it.
    [<Literal>]
    let DefaultIterations = 100_000

    /// Fewer iterations than this are refused: the hash would fall to a dictionary attack in seconds.
    [<Literal>]
    let MinIterations = 10_000

    /// Upper bound: far above any sane setting, low enough that a typo cannot stall lb for minutes.
    [<Literal>]
    let MaxIterations = 10_000_000

    /// RFC 8018 §4.1 asks at least 64 bits of salt; lb draws 128.
    [<Literal>]
    let SaltBytes = 16

    [<Literal>]
    let private HashBytes = 32

    let private derive (password: string) (salt: byte[]) (iterations: int) =
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes password, salt, iterations, HashAlgorithmName.SHA256, HashBytes)

    /// Hashes `password` with `salt` and `iterations`. Rejects (ArgumentException) a salt shorter than 8 bytes
    /// and iterations outside MinIterations..MaxIterations.
    [<CompiledName("Hash")>]
    let hash (password: string, salt: byte[], iterations: int) : PasswordHash =
        if salt.Length < 8 then invalidArg (nameof salt) "a salt needs at least 8 bytes (RFC 8018 §4.1)"
        if iterations < MinIterations || iterations > MaxIterations then
            invalidArg (nameof iterations) $"iterations must be from {MinIterations} to {MaxIterations}"
        { iterations = iterations; salt = Array.copy salt; hash = derive password salt iterations }

    let private base64 (text: string) =
        let buffer = Array.zeroCreate<byte> text.Length
        match Convert.TryFromBase64String(text, Span buffer) with
        | true, n -> Some(Array.sub buffer 0 n)
        | _ -> None

    /// Reads `pbkdf2-sha256$ITERATIONS$SALT$HASH`. Rejects another scheme, iterations outside
    /// MinIterations..MaxIterations, a salt under 8 bytes, a hash that is not 32 bytes, and bad base64 — each
    /// with a message saying which.
    [<CompiledName("Parse")>]
    let parse (text: string) : Result<PasswordHash, string> =
        match text.Trim().Split '$' with
        | [| scheme; iterations; salt; hash |] when scheme = Scheme ->
            match Int32.TryParse(iterations, NumberStyles.None, CultureInfo.InvariantCulture), base64 salt, base64 hash with
            | (false, _), _, _ -> Error $"'{iterations}' is not an iteration count"
            | (true, n), _, _ when n < MinIterations || n > MaxIterations ->
                Error $"{n} iterations is out of range ({MinIterations} to {MaxIterations})"
            | _, None, _ -> Error "the salt is not base64"
            | _, Some s, _ when s.Length < 8 -> Error "the salt is shorter than 8 bytes"
            | _, _, None -> Error "the hash is not base64"
            | _, _, Some h when h.Length <> HashBytes -> Error $"the hash has {h.Length} bytes, expected {HashBytes}"
            | (true, n), Some s, Some h -> Ok { iterations = n; salt = s; hash = h }
        | parts when parts.Length > 0 && parts[0] <> Scheme && parts.Length = 4 ->
            Error $"'{parts[0]}' is not a supported scheme (only {Scheme})"
        | _ -> Error $"not a password hash: expected {Scheme}$ITERATIONS$SALT$HASH"

    /// Whether `password` matches the stored hash, compared in constant time (no timing hint on how many
    /// bytes matched).
    [<CompiledName("Verify")>]
    let verify (stored: PasswordHash, password: string) : bool =
        let candidate = derive password stored.salt stored.iterations
        CryptographicOperations.FixedTimeEquals(ReadOnlySpan candidate, ReadOnlySpan stored.hash)

    /// Passwords an attacker tries first: the seed's `admin:admin`, vendor defaults, the top of every leaked
    /// list. Kept short: each costs one full hash in `lb check`.
    let wellKnown =
        [ ""; "admin"; "password"; "changeme"; "lb"; "haproxy"; "secret"; "stats"; "root"; "123456"; "12345678"; "letmein"; "qwerty" ]

    /// The well-known password the hash matches, if any: the list above plus the user name (and its reverse,
    /// a classic). Only the hash is stored, so each candidate is hashed with the stored salt and iterations.
    [<CompiledName("FindWellKnown")>]
    let findWellKnown (stored: PasswordHash, user: string) : string option =
        (wellKnown @ [ user; String(Array.rev (user.ToCharArray())) ])
        |> List.distinct
        |> List.tryFind (fun candidate -> verify (stored, candidate))
