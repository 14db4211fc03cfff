#pragma once

// Clang thread-safety annotations (clang.llvm.org/docs/ThreadSafetyAnalysis.html, the macro set
// of abseil's base/thread_annotations.h). With clang and -Wthread-safety (the `thread-safety`
// preset, `make thread-safety`) the compiler checks that guarded state is touched only under its
// mutex; with any other compiler they expand to nothing.
//
// Use them with pw::Mutex (common/mutex.h), whose Lock/Unlock and MutexLock are annotated:
//
//   class Queue {
//    public:
//     void Push(Item item) EXCLUDES(mu_) {  // Takes mu_ itself: callers must not hold it.
//       MutexLock lock(mu_);
//       items_.push_back(std::move(item));
//       TrimLocked();
//     }
//
//    private:
//     void TrimLocked() REQUIRES(mu_);      // Callers hold mu_ (checked at every call).
//
//     Mutex mu_;
//     std::deque<Item> items_ GUARDED_BY(mu_);    // Read or written only under mu_.
//     Item* current_ PT_GUARDED_BY(mu_) = nullptr;  // The pointee (not the pointer) is guarded.
//   };
//
// The analysis is per function and does not follow std::lock_guard/std::unique_lock (libstdc++
// is not annotated): lock with MutexLock, or Lock()/Unlock() in one function. A function that
// cannot be expressed (locks handed between functions) may opt out with
// NO_THREAD_SAFETY_ANALYSIS and a comment saying why.

#if defined(__clang__)
#define PW_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define PW_THREAD_ANNOTATION_(x)
#endif

// On a class: its objects are capabilities (mutexes); `x` names the kind in messages.
#define CAPABILITY(x) PW_THREAD_ANNOTATION_(capability(x))

// On an RAII class whose constructor acquires and destructor releases a capability.
#define SCOPED_CAPABILITY PW_THREAD_ANNOTATION_(scoped_lockable)

// On a data member: read or written only while holding `x`.
#define GUARDED_BY(x) PW_THREAD_ANNOTATION_(guarded_by(x))

// On a pointer member: the data it points to is guarded by `x` (the pointer itself is not).
#define PT_GUARDED_BY(x) PW_THREAD_ANNOTATION_(pt_guarded_by(x))

// On mutexes: the order in which they must be acquired.
#define ACQUIRED_BEFORE(...) PW_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) PW_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))

// On a function: callers must hold the capabilities (exclusively, or at least shared).
#define REQUIRES(...) PW_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) PW_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))

// On a function: callers must NOT hold the capabilities (the function takes them itself).
#define EXCLUDES(...) PW_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))

// On a function: it acquires / releases the capabilities (on a member of a capability class with
// no argument: the object itself).
#define ACQUIRE(...) PW_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) PW_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) PW_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) PW_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))

// On a function: it acquires the capabilities when it returns `success` (true or false).
#define TRY_ACQUIRE(...) PW_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))

// On a function: it returns only if the capability is held; from the call on, the analysis
// assumes it is.
#define ASSERT_CAPABILITY(x) PW_THREAD_ANNOTATION_(assert_capability(x))

// On a function: it returns a reference to the capability `x` (an accessor for a mutex).
#define RETURN_CAPABILITY(x) PW_THREAD_ANNOTATION_(lock_returned(x))

// On a function: its body is not analysed. Say why beside it.
#define NO_THREAD_SAFETY_ANALYSIS PW_THREAD_ANNOTATION_(no_thread_safety_analysis)
