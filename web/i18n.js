// Every user-visible string, one table per language (issue 9: English and Simplified Chinese).
export const STRINGS = {
  en: {
    login_title: "Log in", user: "User", password: "Password", login: "Log in",
    logout: "Log out", bad_login: "Wrong user name or password.",
    too_many: "Too many failed logins; try again in {s} s.", unreachable: "The server cannot be reached.",
    fleet: "Fleet", online: "online", offline: "offline", terminals: "terminals",
    id: "Terminal", name: "Name", state: "State", last_seen: "Last data", rsrp: "RSRP",
    supply: "Supply", temperature: "Temperature", buffered: "Buffered blocks",
    analysis: "Analysis", behind: "behind", ok: "ok", none: "—",
    live: "live", reconnecting: "reconnecting…", search: "Search",
    empty: "No terminals yet: an admin adds them with `gridsense terminal add` or the API.",
    ago: "{n} s ago",
  },
  zh: {
    login_title: "登录", user: "用户名", password: "密码", login: "登录",
    logout: "退出", bad_login: "用户名或密码错误。",
    too_many: "登录失败次数过多，请在 {s} 秒后重试。", unreachable: "无法连接服务器。",
    fleet: "终端总览", online: "在线", offline: "离线", terminals: "个终端",
    id: "终端", name: "名称", state: "状态", last_seen: "最近数据", rsrp: "RSRP",
    supply: "供电", temperature: "温度", buffered: "缓存数据块",
    analysis: "分析", behind: "滞后", ok: "正常", none: "—",
    live: "实时", reconnecting: "正在重连…", search: "搜索",
    empty: "还没有终端：管理员可用 `gridsense terminal add` 或 API 添加。",
    ago: "{n} 秒前",
  },
};
