/// Every generator of the Rules property tests, in one place (STYLE rule 9).
module Lb.Rules.Tests.Generators

open System
open FsCheck
open FsCheck.FSharp
open Lb.Rules

// ---- Cookies --------------------------------------------------------------------------------------

/// The persistence cookie name used throughout the cookie properties (the seed's).
let persistenceName = Cookies.DefaultName

/// Characters a hostile application or client puts in cookies: everything that tripped parsers before,
/// the HAProxy < 1.3.23 bug included (`=`, quotes, commas, spaces, backslashes, non-ASCII, NBSP, a
/// surrogate pair). No `;` (a user agent never sends one inside a pair, RFC 6265 §5.4) and no control
/// character (RFC 6265bis §5.6 step 1 drops such cookies).
let private hostileChars =
    [ yield! [ 'a' .. 'e' ]
      yield! [ 'S'; 'R'; 'V'; 'I'; 'D'; '0'; '9'; '_'; '-' ]
      yield! [ '='; '"'; ','; ' '; '\t'; '\\'; '/'; ':'; '{'; '}'; '%'; '$'; '!'; '\''; '('; ')' ]
      yield! [ 'é'; 'ü'; '日'; 'Ω'; '\u00A0'; '\u2028' ] ]

let private hostileText: Gen<string> =
    Gen.frequency
        [ 8, Gen.elements hostileChars |> Gen.map string
          1, Gen.constant "😀" // a surrogate pair must never be split or mangled
          1, Gen.constant (persistenceName + "=") ] // the persistence name inside someone else's value
    |> Gen.listOf
    |> Gen.map String.Concat

let private trimOws (s: string) = s.Trim [| ' '; '\t' |]

/// Text as it survives a round trip through a `Cookie:` header: no spaces or tabs at either end.
let private trimmed (g: Gen<string>) = g |> Gen.map trimOws

/// Trimmed text without `=`, for names (the first `=` ends a name).
let private withoutEquals (g: Gen<string>) =
    g |> Gen.map (fun s -> trimOws (s.Replace("=", "")))

/// Names that look like the persistence name but are not it: parsers that match prefixes, suffixes,
/// case-insensitively or inside quotes get caught.
let private confusableName =
    Gen.elements
        [ "srvid"; "SRVIDX"; "XSRVID"; "SRV ID"; "\"SRVID\""; "SRVİD"; "SRVID\u00A0"; "_SRVID"; "SRVID_"; "S" ]

/// A cookie name a browser can send back: non-empty, no `=` (the first `=` ends the name), trimmed,
/// never the persistence name itself.
let cookieName: Gen<string> =
    Gen.frequency [ 3, withoutEquals hostileText; 1, confusableName ]
    |> Gen.filter (fun s -> s <> "" && s <> persistenceName)

/// A cookie value a browser can send back: possibly empty, trimmed, with `=`, quotes, commas, spaces,
/// non-ASCII, and sometimes a fake persistence pair inside.
let cookieValue: Gen<string> =
    Gen.frequency
        [ 4, trimmed hostileText
          1, Gen.constant ("x " + persistenceName + "=forged")
          1, Gen.constant ("\"" + persistenceName + "=forged\"") ]

/// A neighbour of the persistence cookie: usually `name=value`, sometimes a nameless "flag" (RFC 6265bis
/// treats `foo` as name "" value "foo"), which must not hold `=` or it would read as named.
let hostileCookie: Gen<CookiePair> =
    Gen.frequency
        [ 9, Gen.map2 (fun n v -> { Name = n; Value = v }) cookieName cookieValue
          1,
          withoutEquals hostileText
          |> Gen.filter (fun s -> s <> "")
          |> Gen.map (fun s -> { Name = ""; Value = s }) ]

/// A persistence value as lb emits it: a server name or an opaque digest.
let persistenceValue: Gen<string> =
    Gen.oneof
        [ Gen.map2 (fun a s -> sprintf "app%d_%d" a s) (Gen.choose (1, 9)) (Gen.choose (1, 9))
          Gen.map2
              (fun a s -> Cookies.opaqueValue (a, s, "10.0.0.1:80"))
              (Gen.elements [ "app1"; "app2" ])
              (Gen.elements [ "s1"; "s2"; "s3" ]) ]

/// How a pair is written: `name=value`, or the bare value for a nameless cookie.
let render (pair: CookiePair) =
    if pair.Name = "" then pair.Value else pair.Name + "=" + pair.Value

/// Spacing around a `;`: browsers send "; ", hand-written clients and old proxies send anything.
let separator: Gen<string> =
    let spaces = Gen.elements [ ""; " "; "  "; "\t"; " \t "; "   " ]
    Gen.frequency
        [ 4, Gen.constant "; "
          3, Gen.map2 (fun a b -> a + ";" + b) spaces spaces
          1, Gen.map2 (fun a b -> a + ";;" + b) spaces spaces ]

/// Joins pairs into one header value with generated separators and optional stray spacing at the ends.
let headerOf (pairs: CookiePair list) : Gen<string> =
    gen {
        let! seps = Gen.listOfLength (max 0 (pairs.Length - 1)) separator
        let! lead = Gen.elements [ ""; " "; "\t"; ";" ]
        let! trail = Gen.elements [ ""; " "; ";"; "; " ]
        let body =
            match pairs with
            | [] -> ""
            | first :: rest -> List.fold2 (fun acc sep p -> acc + sep + render p) (render first) seps rest
        return lead + body + trail
    }

/// Hostile neighbours, at least `min` of them.
let hostileCookies (min: int) : Gen<CookiePair list> =
    Gen.sized (fun size -> gen {
        let! n = Gen.choose (min, max min (size / 4 + min))
        return! Gen.listOfLength n hostileCookie
    })

/// Any string at all, control characters and CR/LF injection attempts included.
let anyText: Gen<string> =
    Gen.frequency
        [ 3, hostileText
          1, Gen.elements [ "\r\n"; "\r"; "\n"; "\u0000"; "x\r\nSet-Cookie: evil=1"; ";"; "=" ]
          2, ArbMap.defaults |> ArbMap.generate<string> |> Gen.map (fun (s: string) -> if String.IsNullOrEmpty s then "" else s) ]
    |> Gen.listOf
    |> Gen.map String.Concat

/// A `Cache-Control` directive a backend may send, quoted commas included.
let cacheDirective: Gen<string> =
    Gen.elements
        [ "max-age=60"; "no-store"; "public"; "PUBLIC"; "Public"; "private"; "Private"; "private=\"set-cookie\""
          "no-cache=\"set-cookie, x-token\""; "s-maxage=10"; "must-revalidate"; "ext=\"a,b\""; "no-transform"
          "stale-while-revalidate=30"; "immutable" ]

/// Backend `Cache-Control` field lines: none, one or several, each a list with odd spacing.
let cacheControlLines: Gen<string list * string[]> =
    gen {
        let! directives = Gen.listOf cacheDirective
        let! cuts = Gen.listOfLength directives.Length (Gen.elements [ ", "; ","; " , "; ",, " ])
        let! splitAt = Gen.choose (0, directives.Length)
        let joined (ds: string list) (ss: string list) =
            List.zip ds ss |> List.map (fun (d, s) -> d + s) |> String.concat ""
        let first = joined (List.take splitAt directives) (List.take splitAt cuts)
        let second = joined (List.skip splitAt directives) (List.skip splitAt cuts)
        let lines = [| first; second |] |> Array.filter (fun l -> l <> "")
        return directives, lines
    }

// ---- Balancing ------------------------------------------------------------------------------------

/// One app's servers: weights (0 sometimes, as HAProxy allows) and an up mask.
type Pool = { Weights: int[]; Up: bool[] }

let pool: Gen<Pool> =
    gen {
        let! n = Gen.choose (1, 8)
        let! weights = Gen.arrayOfLength n (Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 10); 1, Gen.choose (11, 256) ])
        let! up = Gen.arrayOfLength n (Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ])
        return { Weights = weights; Up = up }
    }

/// Effective weight: the weight of an up server, else 0.
let effective (p: Pool) = Array.map2 (fun w u -> if u then w else 0) p.Weights p.Up

/// A pool with at least one available server, and small weights so full rounds stay short.
let livePool: Gen<Pool> =
    gen {
        let! n = Gen.choose (1, 8)
        let! weights = Gen.arrayOfLength n (Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 12) ])
        let! up = Gen.arrayOfLength n (Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ])
        return { Weights = weights; Up = up }
    }
    |> Gen.filter (fun p -> Array.sum (effective p) > 0)

/// Active connection counts for a pool (a negative count sometimes, which must read as 0).
let activeFor (p: Pool) : Gen<int[]> =
    Gen.arrayOfLength p.Weights.Length (Gen.frequency [ 1, Gen.constant -1; 8, Gen.choose (0, 20); 1, Gen.choose (0, 100000) ])

// ---- Health ---------------------------------------------------------------------------------------

let thresholds: Gen<HealthThresholds> =
    Gen.map2
        (fun r f ->
            match Health.thresholds (r, f) with
            | Ok t -> t
            | Error e -> failwithf "generator made invalid thresholds: %A" e)
        (Gen.choose (1, 10))
        (Gen.choose (1, 10))

/// Check results: runs of successes and failures, so long runs are common.
let checkResults: Gen<bool list> =
    Gen.listOf (Gen.map2 (fun ok n -> List.replicate n ok) (Gen.elements [ true; false ]) (Gen.choose (1, 12)))
    |> Gen.map List.concat

/// A health state reached by a real history, from either start.
let reachedState: Gen<HealthState> =
    gen {
        let! t = thresholds
        let! startUp = Gen.elements [ true; false ]
        let! results = checkResults
        return results |> List.fold (fun s ok -> fst (Health.step (s, ok))) (Health.initial (t, startUp))
    }

/// One item of an expected-status spec, with the statuses it stands for.
let statusItem: Gen<string * (int * int)> =
    Gen.oneof
        [ Gen.choose (100, 599) |> Gen.map (fun c -> string c, (c, c))
          Gen.map2
              (fun a b -> let lo, hi = min a b, max a b in sprintf "%d-%d" lo hi, (lo, hi))
              (Gen.choose (100, 599))
              (Gen.choose (100, 599))
          Gen.map2 (fun c x -> sprintf "%d%s" c x, (c * 100, c * 100 + 99)) (Gen.choose (1, 5)) (Gen.elements [ "xx"; "XX"; "xX" ]) ]

let status: Gen<int> = Gen.frequency [ 4, Gen.choose (100, 599); 1, Gen.choose (-10, 1000) ]

/// A uniform draw in [0, 1), edges included.
let unitDraw: Gen<float> =
    Gen.frequency
        [ 1, Gen.elements [ 0.0; 0.5; 0.9999999999999999 ]
          6, Gen.choose (0, Int32.MaxValue - 1) |> Gen.map (fun n -> float n / float Int32.MaxValue) ]

let interval: Gen<TimeSpan> =
    Gen.frequency
        [ 3, Gen.choose (1, 120_000) |> Gen.map (fun ms -> TimeSpan.FromMilliseconds(float ms))
          1, Gen.elements [ TimeSpan.Zero; TimeSpan.FromTicks 1L; TimeSpan.FromSeconds 10.0; TimeSpan.FromDays 1.0 ] ]
