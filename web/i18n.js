// Every user-visible string of the web app, one table per language (issue 9: English and
// Simplified Chinese). t(key, {vars}) in lib.js looks them up; {name} is replaced.
// Sections per page; each page uses its own key prefix (term_, ev_, ph_, adm_, map_).
export const STRINGS = {
  en: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "Log in", user: "User", password: "Password", login: "Log in",
    logout: "Log out", bad_login: "Wrong user name or password.",
    too_many: "Too many failed logins; try again in {s} s.", unreachable: "The server cannot be reached.",
    session_ended: "Your session has ended; please log in again.",
    http_error: "The server answered {status}.", page_failed: "This page failed: {msg}",
    not_found: "No such page", forbidden: "This page is for administrators.",
    skip: "Skip to content", loading: "Loading…", none: "—",
    role_viewer: "viewer", role_operator: "operator", role_admin: "admin",
    nav_fleet: "Fleet", nav_events: "Events", nav_phase: "Phase", nav_admin: "Admin",
    live: "live", reconnecting: "reconnecting…", offline_app: "offline: showing the last known state",
    ago_s: "{n} s ago", ago_min: "{n} min ago", ago_h: "{n} h ago", ago_d: "{n} d ago",
    todo_page: "This page is not built yet.",

    // ---- fleet page (page-fleet.js) ----
    fleet: "Fleet", online: "online", offline: "offline", with_events: "with open events",
    id: "Terminal", name: "Name", state: "State", last_seen: "Last data", rsrp: "Signal",
    supply: "Supply", temperature: "Temperature", time_q: "Time", buffered: "Buffered",
    analysis: "Analysis", behind: "behind", ok: "ok", events_open: "Open events",
    analysis_delay: "results {s} s after the samples",
    tq_none: "unknown", tq_gps: "GPS locked", tq_net: "network synced", tq_free: "free running",
    sats: "{n} sats", search: "Search", search_hint: "id or name", show: "Show",
    filter_all: "all", filter_online: "online", filter_offline: "offline", filter_events: "with open events",
    no_match: "No terminal matches the search or filter.", map: "Map of terminal locations",
    empty: "No terminals yet: an admin adds them on the Admin page or with `gridsense terminal add`.",

    // ---- terminal page (page-terminal.js) ----
    term_title: "Terminal {id}", term_since: "online since", term_last: "last data", term_fw: "firmware",
    term_ch: "channels", term_tabs: "Terminal views", term_tab_live: "Live", term_tab_trends: "Trends",
    term_tab_status: "Status", term_tab_events: "Events", term_tab_commands: "Commands",
    // (live tab: term-live.js, keys tl_)

    // ---- terminal history tabs (term-history.js, keys th_) ----

    // ---- events page (page-events.js) ----

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of en ----
  },
  zh: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "登录", user: "用户名", password: "密码", login: "登录",
    logout: "退出", bad_login: "用户名或密码错误。",
    too_many: "登录失败次数过多，请在 {s} 秒后重试。", unreachable: "无法连接服务器。",
    session_ended: "会话已结束，请重新登录。",
    http_error: "服务器返回 {status}。", page_failed: "页面出错：{msg}",
    not_found: "页面不存在", forbidden: "此页面仅供管理员使用。",
    skip: "跳到正文", loading: "加载中…", none: "—",
    role_viewer: "查看者", role_operator: "操作员", role_admin: "管理员",
    nav_fleet: "终端总览", nav_events: "事件", nav_phase: "相角", nav_admin: "管理",
    live: "实时", reconnecting: "正在重连…", offline_app: "离线：显示最后已知状态",
    ago_s: "{n} 秒前", ago_min: "{n} 分钟前", ago_h: "{n} 小时前", ago_d: "{n} 天前",
    todo_page: "此页面尚未完成。",

    // ---- fleet page (page-fleet.js) ----
    fleet: "终端总览", online: "在线", offline: "离线", with_events: "有未确认事件",
    id: "终端", name: "名称", state: "状态", last_seen: "最近数据", rsrp: "信号",
    supply: "供电", temperature: "温度", time_q: "时间", buffered: "缓存块",
    analysis: "分析", behind: "滞后", ok: "正常", events_open: "未确认事件",
    analysis_delay: "结果比采样晚 {s} 秒",
    tq_none: "未知", tq_gps: "GPS 锁定", tq_net: "网络同步", tq_free: "自由运行",
    sats: "{n} 颗卫星", search: "搜索", search_hint: "编号或名称", show: "显示",
    filter_all: "全部", filter_online: "在线", filter_offline: "离线", filter_events: "有未确认事件",
    no_match: "没有符合搜索或筛选条件的终端。", map: "终端位置地图",
    empty: "还没有终端：管理员可在“管理”页面或用 `gridsense terminal add` 添加。",

    // ---- terminal page (page-terminal.js) ----
    term_title: "终端 {id}", term_since: "在线自", term_last: "最近数据", term_fw: "固件",
    term_ch: "通道", term_tabs: "终端视图", term_tab_live: "实时", term_tab_trends: "趋势",
    term_tab_status: "状态", term_tab_events: "事件", term_tab_commands: "命令",
    // (live tab: term-live.js, keys tl_)

    // ---- terminal history tabs (term-history.js, keys th_) ----

    // ---- events page (page-events.js) ----

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of zh ----
  },
};
