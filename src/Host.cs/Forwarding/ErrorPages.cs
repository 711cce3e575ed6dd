using System.Net;

namespace Lb.Host.Forwarding;

/// <summary>The built-in error pages (HAProxy's errorfile set: 400, 403, 408, 500, 502, 503, 504, and 404).</summary>
public static class ErrorPages
{
    private static readonly Dictionary<int, string> Titles = new()
    {
        [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found", [408] = "Request Timeout",
        [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable", [504] = "Gateway Timeout",
    };

    public static string Title(int status) => Titles.TryGetValue(status, out var t) ? t : "Error";

    public static Task WriteAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        var title = $"{status} {Title(status)}";
        var body = $"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{WebUtility.HtmlEncode(reason)}</p></body></html>\n";
        return context.Response.WriteAsync(body);
    }
}
