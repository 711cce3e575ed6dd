namespace Lb.Rules

open System
open System.Globalization
open ConfigReading

/// `[cache]`: the shared HTTP cache (Apache's mod_cache, RFC 9111).
[<RequireQualifiedAccess>]
module CacheSection =
    module K = Keywords.Cache

    let defaultCache =
        { MemoryBytes = K.memory.Default
          MaxEntryBytes = K.maxEntry.Default
          Dir = None
          DiskBytes = K.disk.Default
          XCacheHeader = K.xCacheHeader.Default }

    /// `[cache] memory`: the memory store's bound, 64KB to 64GB (default 256MB).
    let parseCacheMemory errors (cache: Section) : int64 =
        size errors cache K.memory.Name (64L <<< 10) (64L <<< 30) defaultCache.MemoryBytes

    /// `[cache] max_entry`: the largest body stored, 1KB up to `memory` (default 1MB, or `memory` if smaller).
    /// Rejects a value larger than `memory`: no such entry could ever be kept.
    let parseCacheMaxEntry errors (cache: Section) (memory: int64) : int64 =
        size errors cache K.maxEntry.Name (1L <<< 10) memory (min defaultCache.MaxEntryBytes memory)

    /// `[cache] dir`: the disk store's folder (relative to the config file), created at start. Rejects an empty value.
    let parseCacheDir errors (cache: Section) (baseDir: string) : string option =
        match optString errors cache K.dir.Name with
        | Some(path, at) when String.IsNullOrWhiteSpace path ->
            addError errors (keyword cache K.dir.Name) at "empty" "a folder, like \"/var/cache/lb\"; leave dir out to keep entries in memory only"
            None
        | Some(path, _) -> Some(resolve baseDir path)
        | None -> None

    /// `[cache] disk`: the disk store's bound, 1MB to 16TB (default 1GB). Rejects it without `dir`, where it
    /// would be silently ignored.
    let parseCacheDisk errors (cache: Section) (dir: string option) : int64 =
        match tryGet cache K.disk.Name, dir with
        | Some(_, at, _), None ->
            addError errors (keyword cache K.disk.Name) at "disk has no effect without dir" "add dir = \"/var/cache/lb\" or remove disk"
            defaultCache.DiskBytes
        | _ -> size errors cache K.disk.Name (1L <<< 20) (16L <<< 40) defaultCache.DiskBytes

    /// `[cache] x_cache_header`: add `X-Cache: HIT|MISS|REVALIDATED` to responses of cached apps (default true).
    let parseCacheXHeader errors (cache: Section) : bool =
        optBool errors cache K.xCacheHeader.Name |> Option.defaultValue defaultCache.XCacheHeader

    /// `[cache]`: the shared cache's stores and headers. Absent: the defaults (apps still opt in with `cache = true`).
    let parse (root: Section) (baseDir: string) : CacheConfig * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Cache.Table with
        | Some cache ->
            rejectUnknownKeys errors cache K.names
            let memory = parseCacheMemory errors cache
            let dir = parseCacheDir errors cache baseDir
            { MemoryBytes = memory
              MaxEntryBytes = parseCacheMaxEntry errors cache memory
              Dir = dir
              DiskBytes = parseCacheDisk errors cache dir
              XCacheHeader = parseCacheXHeader errors cache }
        | None -> defaultCache

